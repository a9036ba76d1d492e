package ai.wafer.serve;

import ai.wafer.data.ChatReader;
import ai.wafer.generate.ChatTemplate;
import ai.wafer.generate.Generator;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.SamplingParams;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Task;
import ai.wafer.peft.Peft;
import ai.wafer.testutil.Fixtures;
import org.junit.jupiter.api.Test;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The chat page in headless Chromium (Debian's {@code chromium} package; skipped without it): the page
 * sends a message, streams the answer from /v1/chat/completions, and shows what greedy decoding gives.
 */
class WebPageTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");

    @Test void theChatPageStreamsAnAnswer() throws Exception {
        assumeTrue(Files.isExecutable(CHROMIUM), "chromium is not installed (apt-get install -y chromium)");
        Path tok = Fixtures.TOKENIZER;
        Path dir = Files.createTempDirectory("wafer-page");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 32, 2, 50257, 128), 5), dir);
        Files.copy(tok.resolve("vocab.json"), dir.resolve("vocab.json"));
        Files.copy(tok.resolve("merges.txt"), dir.resolve("merges.txt"));
        LoadedModel lm = LoadedModel.load(dir, null, null, WeightType.F32);
        try (WaferServer s = new WaferServer(LoadedModel.load(dir, null, null, WeightType.F32),
                new WaferServer.Config("127.0.0.1", 0, "page-key", 4, 8, 1 << 20, Integer.MAX_VALUE, 256, 60))) {
            String ask = "Hello, who are you?";
            String answer = pageAnswer(s.url() + "/#key=page-key&temp=0&max=40&ask=" + URLEncoder.encode(ask, StandardCharsets.UTF_8), "");
            assertTrue(answer.startsWith("msg assistant|"), "the page shows: " + answer);
            // the page asked for temperature 0: its answer is what greedy decoding gives
            int[] prompt = ChatTemplate.BUILT_IN.render(lm.tokenizer(), List.of(new ChatReader.Message("user", ask)));
            SamplingParams g = SamplingParams.greedy(40).withStopTokens(List.of(lm.tokenizer().eot())).withStop(ChatTemplate.BUILT_IN.stops());
            String greedy = new Generator(lm.model(), lm.tokenizer()).generate(prompt, g, null).text();
            assertEquals(greedy, answer.substring("msg assistant|".length()));
        }
    }

    /** Issue 16: on a server of one base and its adapters the page's select lists them, and the chosen one answers. */
    @Test void theChatPageAsksTheChosenAdapter() throws Exception {
        assumeTrue(Files.isExecutable(CHROMIUM), "chromium is not installed (apt-get install -y chromium)");
        Path tmp = Files.createTempDirectory("wafer-page-adapters");
        Path base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 32, 2, 50257, 128), 5), base);
        for (String f : List.of("vocab.json", "merges.txt")) Files.copy(Fixtures.TOKENIZER.resolve(f), base.resolve(f));
        MultiAdapterServerTest.adapter(base, Task.CAUSAL_LM, List.of(), Peft.Spec.of(Peft.Kind.LORA), 9, tmp.resolve("pos"));
        try (WaferServer s = WaferServer.open(base, Map.of("pos", tmp.resolve("pos")), null, null, null, WeightType.F32,
                new WaferServer.Config("127.0.0.1", 0, "page-key", 4, 8, 1 << 20, Integer.MAX_VALUE, 256, 60))) {
            String ask = "Hello, who are you?";
            String answer = pageAnswer(s.url() + "/#key=page-key&model=pos&temp=0&max=40&ask=" + URLEncoder.encode(ask, StandardCharsets.UTF_8),
                    " + '|' + [...document.querySelectorAll('#model option')].map(o => o.value).join(',')");
            var api = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(s.url() + "/v1/chat/completions"))
                    .header("Authorization", "Bearer page-key").POST(java.net.http.HttpRequest.BodyPublishers.ofString(
                            "{\"model\": \"pos\", \"temperature\": 0, \"max_tokens\": 40, \"messages\": [{\"role\": \"user\", \"content\": \"" + ask + "\"}]}")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            String want = new com.fasterxml.jackson.databind.ObjectMapper().readTree(api.body()).at("/choices/0/message/content").asText();
            assertEquals("msg assistant|" + want + "|base,pos", answer);
        }
    }

    /** What the page at url shows in its first finished message (class|text), and {@code more} (a JS expression's text appended). */
    static String pageAnswer(String url, String more) throws Exception {
        Path profile = Files.createTempDirectory("wafer-chromium");
        Path log = profile.resolve("chromium.log");
        Process p = new ProcessBuilder(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--user-data-dir=" + profile, "--remote-debugging-port=0", url)
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            return Cdp.waitFor(profile, log, "(() => { const d = document.querySelector('.msg[data-done=\"true\"]');"
                    + " return d ? d.className + '|' + d.textContent" + more + " : ''; })()", 60);
        } finally {
            p.destroy();
            if (!p.waitFor(10, TimeUnit.SECONDS)) p.destroyForcibly();
        }
    }

}
