package ai.wafer.serve;

import ai.wafer.finetune.FinetuneModel;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import ai.wafer.testutil.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code wafer serve --model BASE --adapter pos=DIR --adapter neg=DIR ... --adapter-root ROOT} over real HTTP: a request
 * picks its adapter by model, two adapters decoded in one batch answer exactly what each answers alone, classification
 * adapters answer as the same adapter served alone, adapters load and unload under the root only, with the API key.
 */
class MultiAdapterServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String KEY = "multi-key";
    static Path base, root, outside;
    static WaferServer server;
    static final HttpClient http = HttpClient.newHttpClient();

    /** An adapter for the base, its tensors (and head) random as if trained. */
    static void adapter(Path base, Task task, List<String> labels, Peft.Spec spec, long seed, Path dir) {
        FinetuneModel fm = FinetuneModel.create(Checkpoint.load(base), task, labels, spec, 50256, seed);
        SplittableRandom r = new SplittableRandom(seed);
        List<Parameter> ps = new ArrayList<>(fm.method.tensors().values());
        ps.addAll(fm.headParameters());
        for (Parameter p : ps) for (int i = 0; i < p.size(); i++) p.data[p.off + i] = (spec.kind() == Peft.Kind.IA3 ? 1f : 0f) + (float) r.nextGaussian() * 0.5f;
        fm.save(dir, base.toString());
    }

    @BeforeAll static void start() throws Exception {
        Path tmp = Files.createTempDirectory("wafer-multi");
        base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 32, 2, 50257, 64), 7), base);
        for (String f : List.of("vocab.json", "merges.txt")) Files.copy(Fixtures.TOKENIZER.resolve(f), base.resolve(f));
        root = tmp.resolve("adapters");
        Files.createDirectories(root);
        Peft.Spec lora = new Peft.Spec(Peft.Kind.LORA, new Lora.Config(4, 8, 0f, Lora.TARGETS), 0, 0, 0);
        adapter(base, Task.CAUSAL_LM, List.of(), lora, 1, root.resolve("pos"));
        adapter(base, Task.CAUSAL_LM, List.of(), lora, 2, root.resolve("spam"));
        adapter(base, Task.CAUSAL_LM, List.of(), Peft.Spec.of(Peft.Kind.IA3), 3, root.resolve("ia3"));
        adapter(base, Task.SEQUENCE_CLASSIFICATION, List.of("neg", "pos"), Peft.Spec.of(Peft.Kind.LORA), 4, root.resolve("sentiment"));
        adapter(base, Task.TOKEN_CLASSIFICATION, List.of("O", "B-LOC", "I-LOC"), Peft.Spec.of(Peft.Kind.LORA), 5, root.resolve("ner"));
        outside = tmp.resolve("outside");
        adapter(base, Task.CAUSAL_LM, List.of(), lora, 6, outside);
        Files.createSymbolicLink(root.resolve("link-out"), outside);
        Files.createDirectories(root.resolve("empty"));
        Path other = tmp.resolve("other-base");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 32, 2, 50257, 64), 8), other);
        adapter(other, Task.CAUSAL_LM, List.of(), lora, 7, root.resolve("other"));
        Map<String, Path> named = new LinkedHashMap<>();
        for (String n : List.of("pos", "spam", "sentiment", "ner")) named.put(n, root.resolve(n));
        server = WaferServer.open(base, named, root, null, null, WeightType.F32,
                new WaferServer.Config("127.0.0.1", 0, KEY, 16, 64, 1 << 20, Integer.MAX_VALUE, 64, 120));
    }

    @AfterAll static void stop() {
        if (server != null) server.close();
    }

    static HttpResponse<String> send(String method, String path, String body, boolean key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + path)).header("Content-Type", "application/json")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (key) b.header("Authorization", "Bearer " + KEY);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode ok(HttpResponse<String> r) throws Exception {
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    static void assertError(HttpResponse<String> r, int status, String code) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        assertEquals(code, JSON.readTree(r.body()).at("/error/code").asText(), r.body());
    }

    static String completion(String model) {
        return JSON.createObjectNode().put("model", model).put("prompt", "Once upon a time").put("max_tokens", 24)
                .put("temperature", 0).put("logprobs", 1).toString();
    }

    /** The text and every token's log-probability of a greedy completion: equal ones are the same numbers. */
    static String answer(JsonNode r) { return r.at("/choices/0/text").asText() + " " + r.at("/choices/0/logprobs/token_logprobs"); }

    @Test void modelsListTheBaseAndEveryAdapter() throws Exception {
        JsonNode data = ok(send("GET", "/v1/models", null, true)).get("data");
        List<String> ids = new ArrayList<>();
        data.forEach(m -> ids.add(m.get("id").asText()));
        assertTrue(ids.containsAll(List.of("base", "pos", "spam", "sentiment", "ner")), ids.toString());
        assertEquals("base", data.get(1).get("parent").asText());
        assertEquals("sequence-classification", ok(send("GET", "/v1/models/sentiment", null, true)).get("task").asText());
        assertError(send("GET", "/v1/models/nope", null, true), 404, "model_not_found");
        assertError(send("GET", "/v1/models", null, false), 401, "invalid_api_key");
    }

    @Test void twoAdaptersInOneBatchAnswerAsEachAlone() throws Exception {
        List<String> models = List.of("pos", "spam", "base");
        Map<String, String> alone = new LinkedHashMap<>();
        for (String m : models) alone.put(m, answer(ok(send("POST", "/v1/completions", completion(m), true))));
        assertEquals(3, alone.values().stream().distinct().count(), "each adapter should answer differently: " + alone);

        long steps0 = ok(send("GET", "/metrics?format=json", null, true)).get("decode_steps_total").asLong();
        int rounds = 2;
        CyclicBarrier go = new CyclicBarrier(models.size() * rounds);
        ExecutorService pool = Executors.newFixedThreadPool(models.size() * rounds);
        try {
            List<Future<String>> fs = new ArrayList<>();
            for (int k = 0; k < rounds; k++)
                for (String m : models) fs.add(pool.submit(() -> { go.await(); return answer(ok(send("POST", "/v1/completions", completion(m), true))); }));
            for (int i = 0; i < fs.size(); i++) assertEquals(alone.get(models.get(i % models.size())), fs.get(i).get(), models.get(i % models.size()));
        } finally {
            pool.shutdownNow();
        }
        long steps = ok(send("GET", "/metrics?format=json", null, true)).get("decode_steps_total").asLong() - steps0;
        assertTrue(steps < (long) models.size() * rounds * 23, "the requests should have shared decoding steps: " + steps + " steps");
    }

    @Test void classificationAdaptersAnswerAsServedAlone() throws Exception {
        String text = "Paris is big, said New York.";
        for (String n : List.of("sentiment", "ner")) {
            Classifier alone = Classifier.load(base, root.resolve(n), null);
            String body = JSON.createObjectNode().put("model", n).put("input", text).toString();
            if (n.equals("sentiment")) {
                JsonNode d = ok(send("POST", "/v1/classify", body, true)).at("/data/0");
                Classifier.Classified want = alone.classify(text, null);
                assertEquals(want.label(), d.get("label").asText());
                for (var e : want.probabilities().entrySet()) assertEquals(e.getValue(), d.at("/probabilities/" + e.getKey()).asDouble(), 0.0, e.getKey());
                assertError(send("POST", "/v1/tag", body, true), 400, "model_not_supported");
            } else {
                JsonNode d = ok(send("POST", "/v1/tag", body, true)).at("/data/0");
                assertEquals(alone.tag(Classifier.words(text)).tags().toString(), JSON.convertValue(d.get("tags"), List.class).toString());
            }
            assertError(send("POST", "/v1/completions", completion(n), true), 400, "model_not_supported");
        }
        assertError(send("POST", "/v1/classify", JSON.createObjectNode().put("model", "pos").put("input", text).toString(), true), 400, "model_not_supported");
        assertError(send("POST", "/v1/classify", JSON.createObjectNode().put("model", "nope").put("input", text).toString(), true), 404, "model_not_found");
        assertError(send("POST", "/v1/completions", completion("nope"), true), 404, "model_not_found");
    }

    @Test void adaptersLoadAndUnloadFromUnderTheRootOnly() throws Exception {
        String load = "{\"name\": \"late\", \"path\": \"%s\"}";
        assertError(send("POST", "/v1/adapters", String.format(load, "ia3"), false), 401, "invalid_api_key");
        assertError(send("DELETE", "/v1/adapters/pos", null, false), 401, "invalid_api_key");
        for (String bad : List.of("../outside", outside.toString(), "link-out", "ia3/../../outside"))
            assertError(send("POST", "/v1/adapters", String.format(load, bad), true), 403, "path_outside_adapter_root");
        assertError(send("POST", "/v1/adapters", String.format(load, "missing"), true), 404, "adapter_not_found");
        assertError(send("POST", "/v1/adapters", String.format(load, "empty"), true), 400, "invalid_adapter");
        var r = send("POST", "/v1/adapters", String.format(load, "other"), true);
        assertError(r, 400, "invalid_adapter");
        assertTrue(r.body().contains("trained on another base model"), r.body());
        assertError(send("POST", "/v1/adapters", "{\"name\": \"pos\", \"path\": \"ia3\"}", true), 409, "model_exists");
        assertError(send("POST", "/v1/adapters", "{\"name\": \"x\", \"path\": \"ia3\", \"r\": 2}", true), 400, "unknown_parameter");
        assertError(send("POST", "/v1/completions", completion("late"), true), 404, "model_not_found");

        JsonNode m = JSON.readTree(send("POST", "/v1/adapters", String.format(load, root.resolve("ia3")), true).body());
        assertEquals("late", m.get("id").asText(), m.toString());
        String late = answer(ok(send("POST", "/v1/completions", completion("late"), true)));
        assertNotEquals(answer(ok(send("POST", "/v1/completions", completion("base"), true))), late);

        // unloading while a request decodes with it: the request finishes with the adapter, as it would have
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions")).header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                        ((com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(completion("late"))).put("stream", true).toString())).build();
        HttpResponse<java.io.InputStream> res = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
        StringBuilder text = new StringBuilder();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8))) {
            boolean deleted = false;
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                JsonNode o = JSON.readTree(line.substring(6));
                assertFalse(o.has("error"), line);
                text.append(o.at("/choices/0/text").asText());
                if (!deleted) {
                    assertEquals(true, ok(send("DELETE", "/v1/adapters/late", null, true)).get("deleted").asBoolean());
                    deleted = true;
                }
            }
        }
        assertTrue(late.startsWith(text + " "), "streamed '" + text + "', alone '" + late + "'");
        assertError(send("POST", "/v1/completions", completion("late"), true), 404, "model_not_found");
        assertError(send("DELETE", "/v1/adapters/late", null, true), 404, "model_not_found");
    }
}
