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

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
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

    /** /v1/embeddings: the mean of the last hidden states (after ln_f), L2-normalised, as floats or base64 bytes. */
    @Test void embeddings() throws Exception {
        HttpResponse<String> r = post("/v1/embeddings", "{\"input\": [\"The capital of France\", \"is Paris\"], \"model\": \"" + reference.name() + "\"}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode o = JSON.readTree(r.body());
        Gpt g = Checkpoint.load(dir);
        for (int i = 0; i < 2; i++) {
            int[] ids = reference.tokenizer().encode(i == 0 ? "The capital of France" : "is Paris");
            float[] h = g.forwardHidden(ids, 1, ids.length);
            double[] mean = new double[32];
            for (int t = 0; t < ids.length; t++) for (int c = 0; c < 32; c++) mean[c] += h[t * 32 + c] / ids.length;
            double norm = Math.sqrt(java.util.Arrays.stream(mean).map(v -> v * v).sum());
            JsonNode e = o.at("/data/" + i + "/embedding");
            assertEquals(32, e.size());
            for (int c = 0; c < 32; c++) assertEquals(mean[c] / norm, e.get(c).asDouble(), 1e-5, "input " + i + " dim " + c);
        }
        assertEquals(reference.tokenizer().encode("The capital of France").length + reference.tokenizer().encode("is Paris").length,
                o.at("/usage/prompt_tokens").asInt());
        // token ids embed as their text does; base64 is the same floats' little-endian bytes
        int[] ids = reference.tokenizer().encode("is Paris");
        JsonNode b64 = JSON.readTree(post("/v1/embeddings", "{\"input\": " + java.util.Arrays.toString(ids) + ", \"encoding_format\": \"base64\"}").body());
        var bytes = java.nio.ByteBuffer.wrap(java.util.Base64.getDecoder().decode(b64.at("/data/0/embedding").asText())).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int c = 0; c < 32; c++) assertEquals(o.at("/data/1/embedding/" + c).floatValue(), bytes.getFloat(), 0f);
        assertEquals(400, post("/v1/embeddings", "{\"input\": \"x\", \"dimensions\": 8}").statusCode());
        assertEquals(400, post("/v1/embeddings", "{\"input\": \"x\", \"colour\": 1}").statusCode());
        assertEquals(400, post("/v1/embeddings", "{\"input\": []}").statusCode());
        assertEquals(400, post("/v1/embeddings", "{\"input\": [99999999]}").statusCode());
    }

    @Test void aCompletion() throws Exception {
        HttpResponse<String> r = post("/v1/completions", "{\"model\": \"" + reference.name() + "\", \"prompt\": \"The capital of France is\", \"max_tokens\": 6, \"temperature\": 0}");
        assertEquals(200, r.statusCode(), r.body());
        HttpResponse<String> unknown = post("/v1/completions", "{\"model\": \"gpt-4o\", \"prompt\": \"x\", \"max_tokens\": 1}");
        assertEquals(404, unknown.statusCode(), unknown.body());
        assertEquals("model_not_found", JSON.readTree(unknown.body()).at("/error/code").asText());
        assertEquals(404, post("/v1/chat/completions", "{\"model\": \"other\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}").statusCode());
        JsonNode o = JSON.readTree(r.body());
        assertEquals("text_completion", o.get("object").asText());
        String want = expected(reference.tokenizer().encode("The capital of France is"), 6, List.of());
        assertEquals(want, o.at("/choices/0/text").asText());
        assertEquals(o.at("/usage/prompt_tokens").asInt() + o.at("/usage/completion_tokens").asInt(), o.at("/usage/total_tokens").asInt());
        assertTrue(List.of("stop", "length").contains(o.at("/choices/0/finish_reason").asText()));
    }

    /** logprobs: each token's log-probability under the model with the top alternatives, in OpenAI's two shapes. */
    @Test void logprobs() throws Exception {
        JsonNode o = JSON.readTree(post("/v1/completions", "{\"prompt\": \"The capital of France is\", \"max_tokens\": 4, \"temperature\": 0, \"logprobs\": 3}").body());
        JsonNode lp = o.at("/choices/0/logprobs");
        assertEquals(o.at("/choices/0/text").asText(), String.join("", JSON.convertValue(lp.get("tokens"), String[].class)));
        for (int k = 0; k < lp.get("tokens").size(); k++) {
            double chosen = lp.get("token_logprobs").get(k).asDouble(), best = Double.NEGATIVE_INFINITY;
            for (var e : lp.get("top_logprobs").get(k).properties()) best = Math.max(best, e.getValue().asDouble());
            assertEquals(3, lp.get("top_logprobs").get(k).size());
            assertEquals(best, chosen, 1e-12, "greedy takes the most likely token");
            assertTrue(chosen <= 0);
        }
        // the first token's log-probability is log_softmax of the prompt's next-token logits, computed here in double
        int[] prompt = reference.tokenizer().encode("The capital of France is");
        float[] logits = new float[reference.model().vocabSize()];
        reference.model().prefill(reference.model().newCache(prompt.length + 1), prompt, 0, prompt.length, logits);
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        int arg = 0;
        for (int i = 0; i < logits.length; i++) if (logits[i] > max) { max = logits[i]; arg = i; }
        for (float x : logits) sum += Math.exp(x - max);
        assertEquals(reference.tokenizer().decode(new int[] {arg}), lp.at("/tokens/0").asText());
        assertEquals(-Math.log(sum), lp.at("/token_logprobs/0").asDouble(), 1e-4);
        // chat: {content: [{token, logprob, bytes, top_logprobs}]}
        JsonNode c = JSON.readTree(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 3, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 2}").body());
        JsonNode content = c.at("/choices/0/logprobs/content");
        assertEquals(c.at("/usage/completion_tokens").asInt(), content.size());
        for (JsonNode t : content) {
            assertEquals(2, t.get("top_logprobs").size());
            assertTrue(t.get("bytes").size() > 0 && t.get("logprob").asDouble() <= 0);
        }
        // streamed: each chunk carries its tokens' logprobs, and they add up to the same tokens
        HttpResponse<String> st = post("/v1/completions", "{\"prompt\": \"The capital of France is\", \"max_tokens\": 4, \"temperature\": 0, \"logprobs\": 3, \"stream\": true}");
        List<String> streamed = new ArrayList<>();
        for (String block : st.body().split("\n\n")) {
            if (block.isBlank() || block.equals("data: [DONE]")) continue;
            JsonNode ch = JSON.readTree(block.substring(6)).at("/choices/0/logprobs/tokens");
            for (JsonNode t : ch) streamed.add(t.asText());
        }
        assertEquals(JSON.convertValue(lp.get("tokens"), List.class), streamed);
        assertError(post("/v1/completions", "{\"prompt\": \"x\", \"logprobs\": 6}"), 400);
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}"), 400);
    }

    /** n choices: n sequences of one prompt decoded together, choice i sampled from seed + i; streamed, interleaved by index. */
    @Test void nChoices() throws Exception {
        String req = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 1, \"seed\": %d, \"n\": %d%s}";
        JsonNode three = JSON.readTree(post("/v1/completions", String.format(req, 5, 3, "")).body());
        assertEquals(3, three.get("choices").size());
        for (int i = 0; i < 3; i++) {
            assertEquals(i, three.at("/choices/" + i + "/index").asInt());
            JsonNode alone = JSON.readTree(post("/v1/completions", String.format(req, 5 + i, 1, "")).body());
            assertEquals(alone.at("/choices/0/text").asText(), three.at("/choices/" + i + "/text").asText(), "choice " + i + " is seed + i's");
        }
        assertEquals(3 * 8, three.at("/usage/completion_tokens").asInt(), "every choice's tokens (no stop token in 8 sampled ones: vocabulary 50257)");
        // streamed: each index's chunks add up to the same text, and each index finishes once
        HttpResponse<String> r = post("/v1/completions", String.format(req, 5, 3, ", \"stream\": true"));
        StringBuilder[] text = {new StringBuilder(), new StringBuilder(), new StringBuilder()};
        int finished = 0;
        for (String block : r.body().split("\n\n")) {
            if (block.isBlank() || block.equals("data: [DONE]")) continue;
            JsonNode o = JSON.readTree(block.substring(6));
            int i = o.at("/choices/0/index").asInt();
            text[i].append(o.at("/choices/0/text").asText());
            if (!o.at("/choices/0/finish_reason").isNull()) finished++;
        }
        assertEquals(3, finished);
        for (int i = 0; i < 3; i++) assertEquals(three.at("/choices/" + i + "/text").asText(), text[i].toString(), "streamed choice " + i);
        assertError(post("/v1/completions", String.format(req, 5, 0, "")), 400);
        assertError(post("/v1/completions", String.format(req, 5, 17, "")), 400); // more than --max-batch 16
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
        int[] prompt = ChatTemplate.BUILT_IN.render(tok, List.of(new ai.wafer.data.ChatReader.Message("system", "Be brief."),
                new ai.wafer.data.ChatReader.Message("user", "Hi there!")));
        assertEquals(expected(prompt, 12, ChatTemplate.BUILT_IN.stops()), text.toString());
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

    /** Issue 13, item 6: sampling parameters outside sane ranges are refused with a 400 that names the field. */
    @Test void samplingParametersOutOfRangeAreRefusedByName() throws Exception {
        String[][] cases = {{"temperature", "1e-40"}, {"temperature", "1e-50"}, {"temperature", "0.001"}, {"temperature", "3"},
                {"repetition_penalty", "1e-40"}, {"repetition_penalty", "0"}, {"repetition_penalty", "1000"},
                {"top_p", "1e-40"}, {"top_p", "0"}, {"top_p", "1.5"}, {"min_p", "-0.1"}, {"top_k", "-1"}, {"max_tokens", "-1"}};
        for (String[] c : cases) {
            HttpResponse<String> r = post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 4, \"top_p\": 0.9, \"" + c[0] + "\": " + c[1] + "}");
            assertError(r, 400);
            assertEquals(c[0], JSON.readTree(r.body()).at("/error/param").asText(), c[0] + " = " + c[1] + ": " + r.body());
        }
        HttpResponse<String> chat = post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 1e-40}");
        assertError(chat, 400);
        assertEquals("temperature", JSON.readTree(chat.body()).at("/error/param").asText());
        // the edges of the ranges are accepted
        assertEquals(200, post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 2, \"temperature\": 0.01, \"repetition_penalty\": 0.01, \"top_p\": 1e-3, \"seed\": 1}").statusCode());
        assertEquals(200, post("/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 2, \"temperature\": 2, \"repetition_penalty\": 100, \"seed\": 1}").statusCode());
    }

    /** Issue 13, item 21: a prompt too long for the context names the field it came in: prompt, or messages for chat. */
    @Test void contextLengthErrorsNameTheFieldOfThePrompt() throws Exception {
        HttpResponse<String> completion = post("/v1/completions", "{\"prompt\": \"" + "word ".repeat(200) + "\", \"max_tokens\": 4}");
        assertError(completion, 400);
        assertEquals("prompt", JSON.readTree(completion.body()).at("/error/param").asText());
        HttpResponse<String> chat = post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "word ".repeat(200) + "\"}]}");
        assertError(chat, 400);
        assertEquals("messages", JSON.readTree(chat.body()).at("/error/param").asText());
    }

    /** Issue 13, item 9: a declared body over the limit, even one past 2 GB, is answered 413 at once, unread. */
    @Test void aHugeContentLengthIs413AtOnce() throws Exception {
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{\"prompt\": ").getBytes(StandardCharsets.UTF_8));
            s.getOutputStream().flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            String status = in.readLine();
            assertNotNull(status);
            assertTrue(status.startsWith("HTTP/1.1 413"), status);
            int length = -1;
            for (String h; !(h = in.readLine()).isEmpty(); )
                if (h.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) length = Integer.parseInt(h.substring(15).trim());
            char[] body = new char[length];
            for (int got = 0; got < length; ) got += in.read(body, got, length - got);
            JsonNode e = JSON.readTree(new String(body)).get("error");
            assertEquals("request_too_large", e.get("code").asText());
            assertTrue(e.get("message").asText().contains("99999999999"), e.toString());
        }
    }

    /**
     * Issue 13, item 10: every route but the chat page and /health needs the key, whatever form its path takes
     * (a trailing slash, doubled or encoded characters, HEAD for a GET route); with the key each answers.
     */
    @Test void everyRouteNeedsTheKeyWhateverThePathLooksLike() throws Exception {
        String model = dir.getFileName().toString();
        String[][] routes = {{"GET", "/metrics"}, {"GET", "/v1/models"}, {"GET", "/v1/models/" + model}, {"POST", "/v1/completions"},
                {"POST", "/v1/chat/completions"}, {"POST", "/v1/classify"}, {"POST", "/v1/tag"}};
        for (String[] r : routes) {
            String method = r[0], path = r[1];
            int with = status(method, path, KEY);
            assertTrue(method.equals("GET") ? with == 200 : with == 400, method + " " + path + " with the key: " + with); // {} is a bad request
            assertEquals(401, status(method, path, null), method + " " + path);
            assertEquals(401, status(method, path, "wrong"), method + " " + path);
            assertEquals(401, status(method, path + "/", null), method + " " + path + "/");
            String encoded = path.substring(0, path.length() - 1) + "%" + Integer.toHexString(path.charAt(path.length() - 1));
            List<String> variants = new ArrayList<>(List.of("/" + path, path.replace("/", "//"), path + "//", path + "/.",
                    path + "?x=1", path + ";x=1", encoded, "/./" + path.substring(1), "/v1/../" + path.substring(1), path.toUpperCase(java.util.Locale.ROOT)));
            for (String v : variants) {
                int code = status(method, v, null);
                assertTrue(code == 401 || code == 404 || code == 400, method + " " + v + " without the key: " + code);
            }
            if (method.equals("GET")) assertEquals(401, status("HEAD", path, null), "HEAD " + path);
        }
        for (String open : new String[] {"/", "/health"}) assertEquals(200, status("GET", open, null), open);
    }

    /** The status of METHOD path (a JSON body {} for POST), sent with the key or without one (key null). */
    static int status(String method, String path, String key) throws Exception {
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(10_000);
            String body = method.equals("POST") ? "{}" : "";
            s.getOutputStream().write((method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    + (key == null ? "" : "Authorization: Bearer " + key + "\r\n")
                    + (method.equals("POST") ? "Content-Type: application/json\r\nContent-Length: 2\r\n" : "") + "\r\n" + body)
                    .getBytes(StandardCharsets.UTF_8));
            String line = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8)).readLine();
            assertNotNull(line, method + " " + path + ": no answer");
            return Integer.parseInt(line.split(" ")[1]);
        }
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
        JsonNode m = JSON.readTree(get("/metrics?format=json").body());
        assertTrue(m.get("requests_total").asLong() >= 1);
        assertTrue(m.get("generated_tokens_total").asLong() >= 1);
        assertTrue(m.at("/latency_s/p50").isNumber() && m.at("/latency_s/p99").isNumber());
        assertTrue(m.has("tokens_per_s_busy"));
        HttpResponse<String> byAccept = send(HttpRequest.newBuilder(URI.create(server.url() + "/metrics")).header("Authorization", "Bearer " + KEY)
                .header("Accept", "application/json").GET().build());
        assertTrue(JSON.readTree(byAccept.body()).has("requests_total"), byAccept.body());
        assertEquals(400, get("/metrics?format=xml").statusCode());
        HttpResponse<String> page = send(HttpRequest.newBuilder(URI.create(server.url() + "/")).GET().build());
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("/v1/chat/completions"));
    }
}
