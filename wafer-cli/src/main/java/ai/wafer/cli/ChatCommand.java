package ai.wafer.cli;

import ai.wafer.data.ChatReader;
import java.nio.file.Path;
import ai.wafer.generate.Generator;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.SamplingParams;
import ai.wafer.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code wafer chat}: a conversation in the terminal. The whole history is rendered with the chat
 * template each turn; the oldest turns are dropped when it no longer fits the context.
 */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = "Chat with a model in the terminal (history kept; /reset forgets it, /exit or end of input quits).")
public final class ChatCommand implements Callable<Integer> {
    @Mixin GenerationOptions opts;
    @Option(names = "--system", paramLabel = "TEXT", description = "a system message opening the conversation") String system;
    @Option(names = "--chat-template", paramLabel = "FILE", description = "a Jinja chat template (default: the tokenizer_config.json's chat_template, else the built-in ### Role: format)") Path chatTemplate;

    @Override public Integer call() throws IOException {
        LoadedModel lm = opts.load().withChatTemplate(chatTemplate, opts.tokenizer != null ? opts.tokenizer : opts.model);
        Tokenizer tok = lm.requireTokenizer();
        SamplingParams p = opts.params(tok, lm.chat().stops());
        Generator gen = new Generator(lm.model(), tok);
        int ctx = lm.model().config.nPositions();
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<ChatReader.Message> history = new ArrayList<>();
        out.println("chatting with " + lm.name() + " in " + lm.chat().source + " (/reset, /exit)");
        while (true) {
            out.print("> ");
            out.flush();
            String line = in.readLine();
            if (line == null || line.strip().equals("/exit")) break;
            if (line.strip().equals("/reset")) { history.clear(); out.println("(history cleared)"); continue; }
            if (line.isBlank()) continue;
            history.add(new ChatReader.Message("user", line));
            int[] prompt = fit(lm, tok, history, ctx - Math.max(1, Math.min(p.maxNewTokens(), ctx / 2)));
            if (prompt == null) {
                out.println("(that message alone is longer than the model's context; try a shorter one)");
                history.removeLast();
                continue;
            }
            Generator.Result r = gen.generate(prompt, p, (t, s) -> { out.print(s); out.flush(); });
            out.println();
            history.add(new ChatReader.Message("assistant", r.text().strip()));
        }
        return 0;
    }

    /** The rendered conversation, dropping the oldest turns (never the system message) until it fits in limit tokens. */
    private int[] fit(LoadedModel lm, Tokenizer tok, List<ChatReader.Message> history, int limit) {
        while (true) {
            List<ChatReader.Message> msgs = new ArrayList<>();
            if (system != null) msgs.add(new ChatReader.Message("system", system));
            msgs.addAll(history);
            int[] ids = lm.chat().render(tok, msgs);
            if (ids.length <= limit) return ids;
            if (history.size() <= 1) return null;
            history.removeFirst();
        }
    }
}
