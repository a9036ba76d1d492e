package ai.wafer.serve;

import ai.wafer.generate.ChatTemplate;
import ai.wafer.generate.Generator;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.SamplingParams;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/** The server over real HTTP on 127.0.0.1, with a small random model and the GPT-2 tokenizer. */
class ServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String KEY = "test-key";
    static Path dir;
    static WaferServer server;
    static LoadedModel reference;
    static HttpClient http;

    @BeforeAll static void start() throws Exception {
        Path tok = Fixtures.TOKENIZER;
        dir = Files.createTempDirectory("wafer-serve");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 32, 2, 50257, 128), 11), dir);
        Files.copy(tok.resolve("vocab.json"), dir.resolve("vocab.json"));
        Files.copy(tok.resolve("merges.txt"), dir.resolve("merges.txt"));
        server = new WaferServer(LoadedModel.load(dir, null, null, WeightType.F32),
                new WaferServer.Config("127.0.0.1", 0, KEY, 16, 64, 64 * 1024, Integer.MAX_VALUE, 64, 120));
        reference = LoadedModel.load(dir, null, null, WeightType.F32);
        http = HttpClient.newHttpClient();
    }

    @AfterAll static void stop() {
        if (server != null) server.close();
    }

    static HttpResponse<String> post(String path, String body) throws Exception {
        return send(HttpRequest.newBuilder(URI.create(server.url() + path)).header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build());
    }

    static HttpResponse<String> get(String path) throws Exception {
        return send(HttpRequest.newBuilder(URI.create(server.url() + path)).header("Authorization", "Bearer " + KEY).GET().build());
    }

    static HttpResponse<String> send(HttpRequest r) throws Exception {
        return http.send(r, HttpResponse.BodyHandlers.ofString());
    }

    /** What greedy decoding of this prompt gives, computed without the server. */
    static String expected(int[] prompt, int max, List<String> stops) {
        SamplingParams p = SamplingParams.greedy(max).withStopTokens(List.of(reference.tokenizer().eot())).withStop(stops);
        return new Generator(reference.model(), reference.tokenizer()).generate(prompt, p, null).text();
    }

    @Test void aCompletion() throws Exception {
        HttpResponse<String> r = post("/v1/completions", "{\"model\": \"x\", \"prompt\": \"The capital of France is\", \"max_tokens\": 6, \"temperature\": 0}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode o = JSON.readTree(r.body());
        assertEquals("text_completion", o.get("object").asText());
        String want = expected(reference.tokenizer().encode("The capital of France is"), 6, List.of());
        assertEquals(want, o.at("/choices/0/text").asText());
        assertEquals(o.at("/usage/prompt_tokens").asInt() + o.at("/usage/completion_tokens").asInt(), o.at("/usage/total_tokens").asInt());
        assertTrue(List.of("stop", "length").contains(o.at("/choices/0/finish_reason").asText()));
    }

    @Test void aStreamedChat() throws Exception {
        String msgs = "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi there!\"}]";
        HttpResponse<String> r = post("/v1/chat/completions", "{\"messages\": " + msgs + ", \"max_tokens\": 12, \"temperature\": 0, \"stream\": true}");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        StringBuilder text = new StringBuilder();
        List<String> events = new ArrayList<>();
        for (String block : r.body().split("\n\n")) {
            if (block.isBlank()) continue;
            assertTrue(block.startsWith("data: "), block);
            events.add(block.substring(6));
        }
        assertEquals("[DONE]", events.getLast());
        JsonNode first = JSON.readTree(events.getFirst());
        assertEquals("chat.completion.chunk", first.get("object").asText());
        assertEquals("assistant", first.at("/choices/0/delta/role").asText());
        String finish = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode o = JSON.readTree(e);
            text.append(o.at("/choices/0/delta/content").asText(""));
            if (!o.at("/choices/0/finish_reason").isNull()) finish = o.at("/choices/0/finish_reason").asText();
        }
        assertNotNull(finish);
        var tok = reference.tokenizer();
        int[] prompt = ChatTemplate.render(tok, List.of(new ai.wafer.data.ChatReader.Message("system", "Be brief."),
                new ai.wafer.data.ChatReader.Message("user", "Hi there!")));
        assertEquals(expected(prompt, 12, ChatTemplate.STOPS), text.toString());
        // the same request without streaming gives the same answer
        HttpResponse<String> whole = post("/v1/chat/completions", "{\"messages\": " + msgs + ", \"max_tokens\": 12, \"temperature\": 0}");
        assertEquals(text.toString(), JSON.readTree(whole.body()).at("/choices/0/message/content").asText());
    }

    static void assertError(HttpResponse<String> r, int status) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        assertTrue(e.get("message").isTextual() && !e.get("message").asText().isEmpty());
        assertTrue(e.get("type").isTextual());
    }

    @Test void badInputGetsA4xxInOpenAisShape() throws Exception {
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", "), 400);
        assertError(post("/v1/completions", "[1, 2]"), 400);
        assertError(post("/v1/completions", ""), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": \"ten\"}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"temperature\": \"hot\"}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"stream\": \"yes\"}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": 42}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"stop\": [1]}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": -1}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 1000}"), 400); // over the server's limit
        assertError(post("/v1/completions", "{\"prompt\": \"hi\", \"colour\": 3}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": [1, 99999999]}"), 400);
        HttpResponse<String> longPrompt = post("/v1/completions", "{\"prompt\": \"" + "word ".repeat(200) + "\", \"max_tokens\": 4}");
        assertError(longPrompt, 400);
        assertEquals("context_length_exceeded", JSON.readTree(longPrompt.body()).at("/error/code").asText());
        assertError(post("/v1/completions", "{\"prompt\": \"" + "word ".repeat(100) + "\", \"max_tokens\": 60}"), 400); // prompt + max > context
        assertError(post("/v1/chat/completions", "{\"messages\": \"hi\"}"), 400);
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}"), 400);
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}"), 400);
        assertError(post("/v1/completions", "{\"prompt\": \"" + "x".repeat(70 * 1024) + "\"}"), 413);
        assertError(send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"hi\"}")).build()), 401);
        assertError(send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/models"))
                .header("Authorization", "Bearer wrong").GET().build()), 401);
        assertError(get("/v1/nothing-here"), 404);
        assertError(post("/v1/classify", "{\"input\": [\"good\", \"bad\"]}"), 400);
        assertError(post("/v1/tag", "{\"input\": \"Paris is in France\"}"), 400);
        // the server still works afterwards
        assertEquals(200, post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 2}").statusCode());
    }

    @Test void sixteenConcurrentClientsAreAllAnsweredCorrectly() throws Exception {
        int n = 16;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<HttpResponse<String>>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String body = "{\"prompt\": \"Client number " + i + " says\", \"max_tokens\": " + (4 + i % 5) + ", \"temperature\": 0}";
                fs.add(pool.submit(() -> post("/v1/completions", body)));
            }
            for (int i = 0; i < n; i++) {
                HttpResponse<String> r = fs.get(i).get();
                assertEquals(200, r.statusCode(), r.body());
                String want = expected(reference.tokenizer().encode("Client number " + i + " says"), 4 + i % 5, List.of());
                assertEquals(want, JSON.readTree(r.body()).at("/choices/0/text").asText(), "client " + i);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test void modelsHealthMetricsAndThePage() throws Exception {
        JsonNode models = JSON.readTree(get("/v1/models").body());
        assertEquals("list", models.get("object").asText());
        assertEquals(dir.getFileName().toString(), models.at("/data/0/id").asText());
        HttpResponse<String> h = send(HttpRequest.newBuilder(URI.create(server.url() + "/health")).GET().build());
        assertEquals(200, h.statusCode());
        assertEquals("ok", JSON.readTree(h.body()).get("status").asText());
        post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 3}");
        JsonNode m = JSON.readTree(get("/metrics").body());
        assertTrue(m.get("requests_total").asLong() >= 1);
        assertTrue(m.get("generated_tokens_total").asLong() >= 1);
        assertTrue(m.at("/latency_s/p50").isNumber() && m.at("/latency_s/p99").isNumber());
        assertTrue(m.has("tokens_per_s_busy"));
        HttpResponse<String> page = send(HttpRequest.newBuilder(URI.create(server.url() + "/")).GET().build());
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("/v1/chat/completions"));
    }
}
