package ai.wafer.serve;

import ai.wafer.eval.EntitySpans;
import ai.wafer.finetune.Evaluator;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.model.Task;
import ai.wafer.finetune.TaskData;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.peft.Peft;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
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
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * /v1/classify and /v1/tag over real HTTP on 127.0.0.1, each from a tiny fine-tuned model saved and served as
 * {@code wafer serve} would; the answers must match {@link Evaluator}'s predictions on the same texts.
 */
class ClassifierServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> TAGS = List.of("O", "B-LOC", "I-LOC"), CLASSES = List.of("neg", "pos");
    static Path tokDir, tagDir, clsDir;
    static Tokenizer tok;
    static WaferServer tagger, classifier;
    static HttpClient http = HttpClient.newHttpClient();

    /** A random tiny model with a head scaled up so its predictions differ from word to word. */
    static Path save(Task task, List<String> labels, long seed) throws Exception {
        Gpt gpt = Gpt.init(GptConfig.of(1, 32, 2, 50257, 64), seed);
        FinetuneModel fm = FinetuneModel.create(gpt, task, labels, Peft.Spec.of(Peft.Kind.FULL), tok.eot(), seed);
        for (var p : fm.headParameters()) for (int i = 0; i < p.size(); i++) p.data[p.off + i] *= 200;
        Path dir = Files.createTempDirectory("wafer-cls");
        fm.saveWhole(dir);
        Files.copy(tokDir.resolve("vocab.json"), dir.resolve("vocab.json"));
        Files.copy(tokDir.resolve("merges.txt"), dir.resolve("merges.txt"));
        return dir;
    }

    static WaferServer serve(Path dir) {
        assertTrue(Classifier.isClassifier(dir, null));
        Classifier c = Classifier.load(dir, null, null);
        return new WaferServer(c, WaferServer.Config.defaults("127.0.0.1", 0));
    }

    @BeforeAll static void start() throws Exception {
        tokDir = Fixtures.TOKENIZER;
        tok = Tokenizer.load(tokDir);
        tagDir = save(Task.TOKEN_CLASSIFICATION, TAGS, 5);
        clsDir = save(Task.SEQUENCE_CLASSIFICATION, CLASSES, 6);
        tagger = serve(tagDir);
        classifier = serve(clsDir);
    }

    @AfterAll static void stop() {
        if (tagger != null) tagger.close();
        if (classifier != null) classifier.close();
    }

    static HttpResponse<String> post(WaferServer s, String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(s.url() + path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static void assertError(HttpResponse<String> r, int status) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        assertTrue(e.get("message").isTextual() && e.get("type").isTextual() && e.has("param") && e.has("code"), r.body());
    }

    @Test void wordsSplitOffPunctuation() {
        assertEquals(List.of("Paris", ",", "France's", "well-known", "capital", ",", "had", "1,000", "(", "3.5", "%", ")", "cafés",
                        "in", "the", "U.S.", "?", "No", "."),
                Classifier.words("Paris, France's well-known capital,had 1,000 (3.5%) cafés in the U.S.? No."));
        assertEquals(List.of("\"", "Hi", "\"", "-", "-", "she", "said", "'", "em", "."), Classifier.words(" \"Hi\" -- she said 'em."));
        assertEquals(List.of("a", ".", "b", "end", "."), Classifier.words("a. b end."));
    }

    @Test void tagsWordsAsTheEvaluatorDoes() throws Exception {
        List<String> texts = List.of("Paris is in France.", "the  river Seine, it runs through Paris (today)");
        HttpResponse<String> r = post(tagger, "/v1/tag", JSON.writeValueAsString(java.util.Map.of("input", texts)));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode data = JSON.readTree(r.body()).get("data");
        assertEquals(2, data.size());

        // the same sentences through fine-tuning's own encoding and prediction
        Path conll = Files.createTempFile("wafer-tag", ".conll");
        StringBuilder sb = new StringBuilder();
        for (String t : texts) {
            for (String w : Classifier.words(t)) sb.append(w).append('\t').append("O").append('\n');
            sb.append('\n');
        }
        Files.writeString(conll, sb);
        FinetuneModel fm = FinetuneModel.load(tagDir, null, null);
        Evaluator.Scores s = Evaluator.run(fm, TaskData.load(Task.TOKEN_CLASSIFICATION, conll, tok, TAGS, 64), 2, 64);

        boolean varied = false;
        for (int i = 0; i < texts.size(); i++) {
            JsonNode d = data.get(i);
            assertEquals(i, d.get("index").asInt());
            List<String> words = Classifier.words(texts.get(i)), tags = new ArrayList<>();
            d.get("tags").forEach(x -> tags.add(x.asText()));
            List<String> tokens = new ArrayList<>();
            d.get("tokens").forEach(x -> tokens.add(x.asText()));
            assertEquals(words, tokens);
            assertEquals(s.pred().get(i), tags);
            varied |= tags.stream().distinct().count() > 1;
            List<EntitySpans.Entity> want = EntitySpans.lenient(tags, 0);
            JsonNode es = d.get("entities");
            assertEquals(want.size(), es.size(), d.toString());
            for (int k = 0; k < want.size(); k++) {
                JsonNode e = es.get(k);
                assertEquals(want.get(k).type(), e.get("type").asText());
                assertEquals(want.get(k).start(), e.get("start").asInt());
                assertEquals(want.get(k).end(), e.get("end").asInt());
                assertEquals(String.join(" ", words.subList(want.get(k).start(), want.get(k).end() + 1)), e.get("text").asText());
            }
        }
        assertTrue(varied, "the random head should not tag every word alike: " + data);
        assertEquals(List.of("Paris", "is", "in", "France", "."), Classifier.words(texts.get(0)));

        // the same words given pre-split get the same answer, one text or several
        List<List<String>> split = texts.stream().map(Classifier::words).toList();
        JsonNode pre = JSON.readTree(post(tagger, "/v1/tag", JSON.writeValueAsString(java.util.Map.of("tokens", split))).body()).get("data");
        assertEquals(data, pre);
        JsonNode one = JSON.readTree(post(tagger, "/v1/tag", JSON.writeValueAsString(java.util.Map.of("tokens", split.get(1)))).body());
        ((com.fasterxml.jackson.databind.node.ObjectNode) data.get(1)).put("index", 0);
        assertEquals(data.get(1), one.get("data").get(0)); // index 0 of its own request
        // a word with a space inside stays one word: the client's split is kept
        JsonNode kept = JSON.readTree(post(tagger, "/v1/tag", "{\"tokens\": [\"New York\", \"!\"]}").body());
        assertEquals(2, kept.at("/data/0/tags").size(), kept.toString());
        assertEquals("New York", kept.at("/data/0/tokens/0").asText());
    }

    @Test void classifiesWithProbabilitiesAsTheEvaluatorDoes() throws Exception {
        List<String> texts = List.of("a fine film", "dull and far too long, I left early", "ok");
        HttpResponse<String> r = post(classifier, "/v1/classify", JSON.writeValueAsString(java.util.Map.of("input", texts)));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode o = JSON.readTree(r.body());
        assertEquals("list", o.get("object").asText());
        Path jsonl = Files.createTempFile("wafer-cls", ".jsonl");
        StringBuilder sb = new StringBuilder();
        for (String t : texts) sb.append(JSON.writeValueAsString(java.util.Map.of("text", t, "label", "neg"))).append('\n');
        Files.writeString(jsonl, sb);
        FinetuneModel fm = FinetuneModel.load(clsDir, null, null);
        Evaluator.Scores s = Evaluator.run(fm, TaskData.load(Task.SEQUENCE_CLASSIFICATION, jsonl, tok, CLASSES, 64), 2, 64);
        for (int i = 0; i < texts.size(); i++) {
            JsonNode d = o.get("data").get(i);
            assertEquals(i, d.get("index").asInt());
            assertEquals(s.pred().get(i).getFirst(), d.get("label").asText());
            JsonNode p = d.get("probabilities");
            assertEquals(CLASSES.size(), p.size());
            double sum = 0, best = -1;
            for (String c : CLASSES) { sum += p.get(c).asDouble(); best = Math.max(best, p.get(c).asDouble()); }
            assertEquals(1, sum, 1e-6);
            assertEquals(best, p.get(d.get("label").asText()).asDouble());
        }
        // a single string is one item
        JsonNode one = JSON.readTree(post(classifier, "/v1/classify", "{\"input\": \"ok\"}").body());
        assertEquals(1, one.get("data").size());
        assertEquals(s.pred().get(2).getFirst(), one.at("/data/0/label").asText());
    }

    @Test void wrongEndpointBadInputAndCompletionsAre400s() throws Exception {
        assertError(post(tagger, "/v1/classify", "{\"input\": \"x\"}"), 400); // a tagger has no sequence head
        assertError(post(classifier, "/v1/tag", "{\"input\": \"x\"}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"input\": 3}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"input\": []}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"input\": [\"a\", 2]}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"input\": \"  \"}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"input\": \"a\", \"colour\": 1}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"tokens\": []}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"tokens\": \"a b\"}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"tokens\": [\"a\", 2]}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"tokens\": [[\"a\"], []]}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"tokens\": [\"a\", \" \"]}"), 400);
        assertError(post(tagger, "/v1/tag", "{\"tokens\": [\"a\"], \"input\": \"a\"}"), 400);
        assertError(post(classifier, "/v1/tag", "{\"tokens\": [\"a\"]}"), 400);
        assertError(post(classifier, "/v1/classify", "{\"input\": \"a\""), 400);
        HttpResponse<String> tooLong = post(classifier, "/v1/classify", "{\"input\": \"" + "word ".repeat(100) + "\"}");
        assertError(tooLong, 400);
        assertEquals("context_length_exceeded", JSON.readTree(tooLong.body()).at("/error/code").asText());
        HttpResponse<String> gen = post(classifier, "/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 2}");
        assertError(gen, 400);
        assertEquals("model_not_supported", JSON.readTree(gen.body()).at("/error/code").asText());
        assertError(post(tagger, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"), 400);
        assertEquals(200, post(tagger, "/v1/tag", "{\"input\": \"still fine\"}").statusCode());
    }

    @Test void aChatTemplateForAClassifierIsRefused() {
        ai.wafer.WaferException e = assertThrows(ai.wafer.WaferException.class, () -> WaferServer.open(clsDir, null, null, clsDir.resolve("t.jinja"),
                ai.wafer.generate.WeightType.F32, WaferServer.Config.defaults("127.0.0.1", 0)));
        assertTrue(e.getMessage().contains("--chat-template") && e.getMessage().contains("classifier"), e.getMessage());
    }

    /** A classifier's page at / is a classification or tagging form, not the chat page; /v1/models says which. */
    @Test void thePageOffersWhatTheServerDoes() throws Exception {
        for (WaferServer s : List.of(tagger, classifier)) {
            String page = http.send(HttpRequest.newBuilder(URI.create(s.url() + "/")).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(page.contains("/v1/classify") && page.contains("/v1/tag") && !page.contains("/v1/chat/completions"), page);
        }
        String models = http.send(HttpRequest.newBuilder(URI.create(tagger.url() + "/v1/models")).build(), HttpResponse.BodyHandlers.ofString()).body();
        assertEquals("token-classification", JSON.readTree(models).at("/data/0/task").asText());
    }

    /**
     * Issue 13, item 8: /v1/classify and /v1/tag have the completions' back-pressure. With --max-queue 1, one request
     * runs and one waits; while the model is busy (the test holds it) the others are answered 429 at once, and the
     * two admitted ones are answered when it is free.
     */
    @Test void classifyAndTagAnswer429WhenTheirQueueIsFull() throws Exception {
        for (Path dir : new Path[] {clsDir, tagDir}) {
            Classifier c = Classifier.load(dir, null, null);
            String path = c.task() == Task.SEQUENCE_CLASSIFICATION ? "/v1/classify" : "/v1/tag";
            try (WaferServer s = new WaferServer(c, new WaferServer.Config("127.0.0.1", 0, null, 16, 1, 1 << 20, Integer.MAX_VALUE, 64, 60))) {
                List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> fs = new ArrayList<>();
                synchronized (c) { // the model is busy
                    for (int i = 0; i < 5; i++)
                        fs.add(http.sendAsync(HttpRequest.newBuilder(URI.create(s.url() + path)).header("Content-Type", "application/json")
                                .POST(HttpRequest.BodyPublishers.ofString("{\"input\": \"Paris is in France\"}")).build(), HttpResponse.BodyHandlers.ofString()));
                    long deadline = System.nanoTime() + 20_000_000_000L;
                    while (fs.stream().filter(java.util.concurrent.Future::isDone).count() < 3) {
                        assertTrue(System.nanoTime() < deadline, path + ": no request was refused while the model was busy");
                        Thread.sleep(5);
                    }
                    for (var f : fs) if (f.isDone()) {
                        assertError(f.get(), 429);
                        assertEquals("queue_full", JSON.readTree(f.get().body()).at("/error/code").asText());
                    }
                }
                int ok = 0;
                for (var f : fs) if (f.get(20, java.util.concurrent.TimeUnit.SECONDS).statusCode() == 200) ok++;
                assertEquals(2, ok, path);
                assertEquals(200, post(s, path, "{\"input\": \"Paris\"}").statusCode()); // and the slots are free again
            }
        }
    }
}
