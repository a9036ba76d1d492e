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
import ai.wafer.testutil.Fixtures;
import org.junit.jupiter.api.Test;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
            String url = s.url() + "/#key=page-key&temp=0&max=40&ask=" + URLEncoder.encode(ask, StandardCharsets.UTF_8);
            Path profile = Files.createTempDirectory("wafer-chromium");
            Path log = profile.resolve("chromium.log");
            Process p = new ProcessBuilder(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-first-run", "--user-data-dir=" + profile, "--remote-debugging-port=0", url)
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            String answer;
            try {
                answer = Cdp.waitFor(profile, log, "(() => { const d = document.querySelector('.msg[data-done=\"true\"]');"
                        + " return d ? d.className + '|' + d.textContent : ''; })()", 60);
            } finally {
                p.destroy();
                if (!p.waitFor(10, TimeUnit.SECONDS)) p.destroyForcibly();
            }
            assertTrue(answer.startsWith("msg assistant|"), "the page shows: " + answer);
            // the page asked for temperature 0: its answer is what greedy decoding gives
            int[] prompt = ChatTemplate.BUILT_IN.render(lm.tokenizer(), List.of(new ChatReader.Message("user", ask)));
            SamplingParams g = SamplingParams.greedy(40).withStopTokens(List.of(lm.tokenizer().eot())).withStop(ChatTemplate.BUILT_IN.stops());
            String greedy = new Generator(lm.model(), lm.tokenizer()).generate(prompt, g, null).text();
            assertEquals(greedy, answer.substring("msg assistant|".length()));
        }
    }

}
