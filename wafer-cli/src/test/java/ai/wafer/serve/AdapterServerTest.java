package ai.wafer.serve;

import ai.wafer.cli.Wafer;
import ai.wafer.finetune.Evaluator;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.model.Task;
import ai.wafer.finetune.TaskData;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.peft.AdapterIo;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static ai.wafer.serve.ClassifierServerTest.post;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code wafer serve --model BASE --adapter DIR} with LoRA classification adapters made by {@code wafer finetune
 * --method lora}: over real HTTP, /v1/classify and /v1/tag answer as {@link Evaluator} scores the same adapter,
 * and the classify probabilities are the adapter's (not the base model's with the head alone).
 */
class AdapterServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Path base, tagAdapter, clsAdapter;
    static Tokenizer tok;
    static WaferServer tagger, classifier;

    static int wafer(String... args) { return Wafer.commandLine().execute(args); }

    /** Serves as ServeCommand does: the base model with the adapter's hooks and head. */
    static WaferServer serve(Path adapter) {
        assertTrue(Classifier.isClassifier(base, adapter));
        Classifier c = Classifier.load(base, adapter, null);
        return new WaferServer(c, WaferServer.Config.defaults("127.0.0.1", 0));
    }

    @BeforeAll static void finetuneAndServe() throws Exception {
        Path tmp = Files.createTempDirectory("wafer-adapter");
        Path tokDir = Fixtures.TOKENIZER;
        tok = Tokenizer.load(tokDir);
        base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 32, 2, 50257, 64), 7), base);
        Files.copy(tokDir.resolve("vocab.json"), base.resolve("vocab.json"));
        Files.copy(tokDir.resolve("merges.txt"), base.resolve("merges.txt"));

        Path conll = tmp.resolve("train.conll");
        StringBuilder sb = new StringBuilder();
        String[][] sentences = {{"Paris", "B-LOC", "is", "O", "big", "O", ".", "O"}, {"we", "O", "saw", "O", "New", "B-LOC", "York", "I-LOC", "!", "O"},
                {"Rome", "B-LOC", ",", "O", "then", "O", "Paris", "B-LOC"}, {"it", "O", "rains", "O", "in", "O", "Rome", "B-LOC", ".", "O"}};
        for (String[] s : sentences) {
            for (int i = 0; i < s.length; i += 2) sb.append(s[i]).append('\t').append(s[i + 1]).append('\n');
            sb.append('\n');
        }
        Files.writeString(conll, sb);
        tagAdapter = tmp.resolve("tag-lora");
        assertEquals(0, wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--train", conll.toString(),
                "--method", "lora", "--epochs", "20", "--batch-size", "2", "--lr", "1e-2", "--no-progress", "--out", tagAdapter.toString()));

        Path jsonl = tmp.resolve("train.jsonl");
        Files.writeString(jsonl, """
                {"text": "a fine film", "label": "pos"}
                {"text": "dull and far too long", "label": "neg"}
                {"text": "great fun", "label": "pos"}
                {"text": "awful, I left early", "label": "neg"}
                """);
        clsAdapter = tmp.resolve("cls-lora");
        assertEquals(0, wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", jsonl.toString(),
                "--method", "lora", "--epochs", "20", "--batch-size", "2", "--lr", "1e-2", "--no-progress", "--out", clsAdapter.toString()));
        assertTrue(AdapterIo.isAdapter(tagAdapter) && AdapterIo.isAdapter(clsAdapter));
        tagger = serve(tagAdapter);
        classifier = serve(clsAdapter);
    }

    @AfterAll static void stop() {
        if (tagger != null) tagger.close();
        if (classifier != null) classifier.close();
    }

    @Test void tagsAsTheEvaluatorScoresTheAdapter() throws Exception {
        List<String> texts = List.of("Paris is big.", "we saw Rome, then New York!", "it rains in Paris");
        var r = post(tagger, "/v1/tag", JSON.writeValueAsString(Map.of("input", texts)));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode data = JSON.readTree(r.body()).get("data");

        Path conll = Files.createTempFile("wafer-tag", ".conll");
        StringBuilder sb = new StringBuilder();
        for (String t : texts) {
            for (String w : Classifier.words(t)) sb.append(w).append("\tO\n");
            sb.append('\n');
        }
        Files.writeString(conll, sb);
        FinetuneModel fm = FinetuneModel.load(base, tagAdapter, null);
        Evaluator.Scores s = Evaluator.run(fm, TaskData.load(Task.TOKEN_CLASSIFICATION, conll, tok, fm.labels, 64), 2, 64);
        boolean varied = false;
        for (int i = 0; i < texts.size(); i++) {
            List<String> tags = new ArrayList<>();
            data.get(i).get("tags").forEach(x -> tags.add(x.asText()));
            assertEquals(s.pred().get(i), tags, texts.get(i));
            varied |= tags.stream().distinct().count() > 1;
        }
        assertTrue(varied, "the trained tagger should not tag every word alike: " + data);
    }

    @Test void classifiesAsTheEvaluatorScoresTheAdapter() throws Exception {
        List<String> texts = List.of("a fine film", "dull and far too long", "great fun", "ok I guess");
        var r = post(classifier, "/v1/classify", JSON.writeValueAsString(Map.of("input", texts)));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode data = JSON.readTree(r.body()).get("data");

        Path jsonl = Files.createTempFile("wafer-cls", ".jsonl");
        StringBuilder sb = new StringBuilder();
        for (String t : texts) sb.append(JSON.writeValueAsString(Map.of("text", t, "label", "neg"))).append('\n');
        Files.writeString(jsonl, sb);
        FinetuneModel fm = FinetuneModel.load(base, clsAdapter, null);
        Evaluator.Scores s = Evaluator.run(fm, TaskData.load(Task.SEQUENCE_CLASSIFICATION, jsonl, tok, fm.labels, 64), 2, 64);
        for (int i = 0; i < texts.size(); i++) {
            assertEquals(s.pred().get(i).getFirst(), data.get(i).get("label").asText(), texts.get(i));
            // the probabilities are the adapter's: the LoRA update moves them away from the base model's
            int[] ids = tok.encodeOrdinary(texts.get(i));
            double[] with = probabilities(fm, ids);
            fm.gpt.clearHooks();
            double[] without = probabilities(fm, ids);
            fm.method.attach(fm.gpt);
            double moved = 0;
            for (int k = 0; k < fm.labels.size(); k++) {
                assertEquals(with[k], data.get(i).get("probabilities").get(fm.labels.get(k)).asDouble(), 1e-5, texts.get(i));
                moved = Math.max(moved, Math.abs(with[k] - without[k]));
            }
            assertTrue(moved > 1e-4, "LoRA should change the probabilities of '" + texts.get(i) + "'");
        }
        assertEquals(List.of("neg", "pos"), List.of(data.get(1).get("label").asText(), data.get(0).get("label").asText()),
                "20 epochs on the four training texts should learn them: " + data);
    }

    private static double[] probabilities(FinetuneModel fm, int[] ids) {
        float[] h = fm.gpt.forwardHidden(ids, 1, ids.length);
        float[] logits = fm.seqHead.logits(h, new int[] {ids.length}, null, 1, ids.length);
        int K = fm.labels.size();
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int k = 0; k < K; k++) max = Math.max(max, logits[k]);
        double[] p = new double[K];
        for (int k = 0; k < K; k++) sum += p[k] = Math.exp(logits[k] - max);
        for (int k = 0; k < K; k++) p[k] /= sum;
        return p;
    }
}
