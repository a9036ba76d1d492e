package ai.wafer.serve;

import ai.wafer.generate.Generator;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.SamplingParams;
import ai.wafer.generate.WeightType;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongPredicate;

import static org.junit.jupiter.api.Assertions.*;

/**
 * One request must not hurt another. The model served has a poisoned position: its row of wpe is NaN, so a sequence
 * that reaches position {@link #POISON} gets NaN logits in its own row of the shared decode step (every layer works
 * row by row), and only it.
 */
class ServerIsolationTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int POISON = 1000;
    static WaferServer server;
    static Generator reference;
    static Tokenizer tok;
    static final HttpClient http = HttpClient.newHttpClient();

    static InferenceModel poisoned() {
        Gpt g = Gpt.init(GptConfig.of(2, 32, 2, 50257, 1024), 11);
        int C = g.config.nEmbd();
        Arrays.fill(g.wpe.data, POISON * C, (POISON + 1) * C, Float.NaN);
        return new InferenceModel(g, WeightType.F32);
    }

    @BeforeAll static void start() {
        tok = Tokenizer.load(Fixtures.TOKENIZER);
        server = new WaferServer(new LoadedModel("poisoned", poisoned(), tok),
                new WaferServer.Config("127.0.0.1", 0, null, 16, 64, 1 << 20, Integer.MAX_VALUE, 1000, 120));
        reference = new Generator(poisoned(), tok);
    }

    @AfterAll static void stop() {
        if (server != null) server.close();
    }

    static CompletableFuture<HttpResponse<String>> post(String body) {
        return http.sendAsync(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode metrics() throws Exception {
        return JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(server.url() + "/metrics?format=json")).build(),
                HttpResponse.BodyHandlers.ofString()).body());
    }

    /** Waits (at most 20 s) until the number of sequences being decoded satisfies {@code ok}. */
    static void awaitActive(LongPredicate ok) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        long a;
        while (!ok.test(a = metrics().get("active_sequences").asLong())) {
            assertTrue(System.nanoTime() < deadline, "still " + a + " sequences active");
            Thread.sleep(10);
        }
    }

    /** The data events of a server-sent event stream, [DONE] last. */
    static List<String> events(String body) {
        List<String> out = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            if (block.isBlank()) continue;
            assertTrue(block.startsWith("data: "), block);
            out.add(block.substring(6));
        }
        assertEquals("[DONE]", out.getLast());
        return out;
    }

    /** Issue 13, "Must hold": N concurrent streams, one poisoned; it alone fails, with an error, and all others finish correctly. */
    @Test @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void onePoisonedStreamFailsAloneAndEveryOtherStreamFinishesCorrectly() throws Exception {
        int n = 7, max = 120; // prompts of a few tokens plus 120 stay far below the poisoned position
        List<CompletableFuture<HttpResponse<String>>> healthy = new ArrayList<>();
        for (int i = 0; i < n; i++)
            healthy.add(post("{\"prompt\": \"Stream " + i + " says\", \"max_tokens\": " + max + ", \"temperature\": 0, \"stream\": true}"));
        awaitActive(a -> a >= n); // all decoding together, so the poisoned row will share their steps
        int[] prompt = new int[POISON - 5];
        Arrays.fill(prompt, 464);
        // sampling with top_p, as in the issue: NaN probabilities once the row reaches the poisoned position
        var poisoned = post("{\"prompt\": " + Arrays.toString(prompt)
                + ", \"max_tokens\": 20, \"temperature\": 1, \"top_p\": 0.9, \"seed\": 1, \"stream\": true}");
        for (int i = 0; i < n; i++) {
            HttpResponse<String> r = healthy.get(i).get(120, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.body());
            StringBuilder text = new StringBuilder();
            String finish = null;
            for (String e : events(r.body())) {
                if (e.equals("[DONE]")) continue;
                JsonNode o = JSON.readTree(e);
                assertNull(o.get("error"), "stream " + i + ": " + e);
                text.append(o.at("/choices/0/text").asText());
                if (!o.at("/choices/0/finish_reason").isNull()) finish = o.at("/choices/0/finish_reason").asText();
            }
            SamplingParams p = SamplingParams.greedy(max).withStopTokens(List.of(tok.eot()));
            Generator.Result want = reference.generate(tok.encode("Stream " + i + " says"), p, null);
            assertEquals(want.text(), text.toString(), "stream " + i);
            assertEquals(want.finishReason().api, finish, "stream " + i);
        }
        HttpResponse<String> bad = poisoned.get(60, TimeUnit.SECONDS);
        assertEquals(200, bad.statusCode(), bad.body());
        List<String> badEvents = events(bad.body());
        JsonNode error = JSON.readTree(badEvents.get(badEvents.size() - 2)).get("error");
        assertNotNull(error, bad.body());
        assertTrue(error.get("message").asText().contains("not finite"), error.toString());
    }

    /** Issue 13, item 7: a non-streaming request whose client disconnects stops generating and frees its slot. */
    @Test @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void aNonStreamingClientThatLeavesFreesItsSlot() throws Exception {
        awaitActive(a -> a == 0);
        long before = metrics().get("generated_tokens_total").asLong();
        int max = 900;
        String body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": " + max + ", \"temperature\": 0}";
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                    + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
            out.flush();
            awaitActive(a -> a == 1);
        } // the client leaves while its completion is being generated
        awaitActive(a -> a == 0);
        long made = metrics().get("generated_tokens_total").asLong() - before;
        assertTrue(made < max / 2, made + " of " + max + " tokens generated for a client that had left");
        // the slot is free: the next request is served
        assertEquals(200, post("{\"prompt\": \"hi\", \"max_tokens\": 2}").get(30, TimeUnit.SECONDS).statusCode());
    }
}
