package ai.wafer.cli;

import ai.wafer.generate.Generator;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.SamplingParams;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code wafer generate}: continues a prompt, printing the text as it is made; statistics go to stderr. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text after a prompt with a KV cache; the text streams to stdout as it is made.")
public final class GenerateCommand implements Callable<Integer> {
    @Mixin GenerationOptions opts;
    @Option(names = "--prompt", required = true, paramLabel = "TEXT") String prompt;
    @Option(names = "--echo", description = "print the prompt before the continuation") boolean echo;
    @Option(names = "--quiet", description = "no statistics on stderr") boolean quiet;

    @Override public Integer call() {
        LoadedModel lm = opts.load();
        var tok = lm.requireTokenizer();
        SamplingParams p = opts.params(tok, List.of());
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        if (echo) out.print(prompt);
        Generator.Result r = new Generator(lm.model(), tok).generate(prompt, p, (t, s) -> { if (!s.isEmpty()) { out.print(s); out.flush(); } });
        out.println();
        if (!quiet)
            System.err.printf(Locale.ROOT, "[%d prompt tokens in %.0f ms (%.1f tok/s), %d new tokens at %.1f tok/s, finish: %s]%n",
                    r.promptTokens(), r.prefillNanos() / 1e6, r.promptTokens() / (r.prefillNanos() / 1e9 + 1e-12),
                    r.tokens().length, r.decodeTokensPerSecond(), r.finishReason().api);
        return 0;
    }
}
