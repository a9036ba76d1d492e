package ai.wafer.cli;

import ai.wafer.finetune.Evaluation;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.serve.Classifier;
import ai.wafer.serve.WaferServer;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 17 item 4: data columns, sentence pairs, multi-label and regression heads, end to end through {@code wafer
 * finetune} and {@code wafer evaluate}: the problem type and the columns are saved with the model, so evaluate (given
 * neither) reproduces the scores of the dev evaluation whose model training kept.
 */
class SequenceProblemsCliTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path tmp;
    static Path base;

    @BeforeAll
    static void model() {
        base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1), base);
        TokenizerFiles.copy(Fixtures.TOKENIZER, base);
    }

    static Path write(String name, String text) throws Exception {
        Path f = tmp.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    /** The metrics.jsonl row of the dev evaluation whose model was kept: the first with the highest sign * key. */
    static JsonNode bestDev(Path out, String key, int sign) throws Exception {
        JsonNode best = null;
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            JsonNode row = JSON.readTree(line);
            if (row.has(key) && (best == null || sign * row.get(key).asDouble() > sign * best.get(key).asDouble())) best = row;
        }
        return best;
    }

    /**
     * Serves the model (or adapter) and classifies each text (with its pair when {@code pairs} is not null) over HTTP:
     * the answers are evaluation's predictions for the same rows, which are the file's rows in order.
     */
    static JsonNode served(Path model, Path adapter, List<String> texts, List<String> pairs) throws Exception {
        try (WaferServer s = new WaferServer(Classifier.load(model, adapter, null), WaferServer.Config.defaults("127.0.0.1", 0))) {
            Map<String, Object> body = new java.util.HashMap<>(Map.of("input", texts));
            if (pairs != null) body.put("text_pair", pairs);
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(s.url() + "/v1/classify"))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            return JSON.readTree(r.body()).get("data");
        }
    }

    @Test
    void multiLabelSentencePairsFromOtherFields() throws Exception {
        StringBuilder lines = new StringBuilder();
        String[][] tags = {{"\"sport\""}, {"\"sport\"", "\"politics\""}, {}, {"\"money\""}, {"\"politics\"", "\"money\""}, {"\"sport\""}};
        for (int i = 0; i < 12; i++)
            lines.append("{\"premise\": \"").append(i % 3 == 0 ? "the match " : "a vote ").append("ran late ".repeat(i % 4))
                    .append("\", \"hypothesis\": \"").append(i % 2 == 0 ? "yes" : "no").append("\", \"tags\": [")
                    .append(String.join(", ", tags[i % tags.length])).append("]}\n");
        Path data = write("multi.jsonl", lines.toString()), out = tmp.resolve("multi");
        var r = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", data.toString(),
                "--dev", data.toString(), "--text-field", "premise", "--text-pair-field", "hypothesis", "--label-field", "tags",
                "--problem-type", "multi_label_classification", "--method", "full", "--epochs", "2", "--batch-size", "4",
                "--no-progress", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode cfg = JSON.readTree(out.resolve("config.json").toFile());
        assertEquals("multi_label_classification", cfg.get("problem_type").asText());
        assertEquals(3, cfg.get("num_labels").asInt());
        assertEquals("hypothesis", cfg.at("/wafer_columns/text_pair").asText());

        JsonNode dev = bestDev(out, "eval_macro_f1", 1);
        var ev = wafer("evaluate", "--model", out.toString(), "--data", data.toString(), "--format", "json");
        assertEquals(0, ev.code(), ev.err());
        JsonNode j = JSON.readTree(ev.out());
        assertEquals("multi_label_classification", j.get("problem_type").asText());
        assertEquals(dev.get("eval_loss").asDouble(), j.get("loss").asDouble(), 1e-5, ev.out());
        assertEquals(dev.get("eval_accuracy").asDouble(), j.at("/report/accuracy").asDouble(), 1e-9, ev.out());
        assertEquals(dev.get("eval_macro_f1").asDouble(), j.at("/report/macro avg/f1-score").asDouble(), 1e-9, ev.out());
        for (String label : new String[] {"money", "politics", "sport"}) assertTrue(j.get("report").has(label), ev.out());
        var text = wafer("evaluate", "--model", out.toString(), "--data", data.toString());
        assertTrue(text.out().startsWith("multi-label classification report"), text.out());
        assertTrue(!text.out().contains("confusion"), text.out());

        // served: the pair joined as in training, a label set per text as evaluation predicts it
        List<String> premises = new java.util.ArrayList<>(), hypotheses = new java.util.ArrayList<>();
        for (String line : Files.readAllLines(data)) {
            premises.add(JSON.readTree(line).get("premise").asText());
            hypotheses.add(JSON.readTree(line).get("hypothesis").asText());
        }
        var scores = Evaluation.run(new Evaluation.Request(out, null, null, null, data, 4, null, ai.wafer.data.Batcher.Side.RIGHT, null), null).scores;
        JsonNode answers = served(out, null, premises, hypotheses);
        for (int i = 0; i < premises.size(); i++) {
            List<String> labels = new java.util.ArrayList<>();
            answers.get(i).get("labels").forEach(l -> labels.add(l.asText()));
            assertEquals(new java.util.TreeSet<>(scores.pred().get(i)), new java.util.TreeSet<>(labels), "row " + i);
            assertEquals(3, answers.get(i).get("probabilities").size());
        }
        var noPair = assertThrows(RuntimeException.class, () -> Classifier.load(out, null, null).pairs(null, 1));
        assertTrue(noPair.getMessage().contains("give text_pair"), noPair.getMessage());
    }

    @Test
    void regressionFromCsvWithAnAdapter() throws Exception {
        StringBuilder csv = new StringBuilder("id,sentence,score\n");
        for (int i = 0; i < 12; i++)
            csv.append(i).append(",\"").append(i % 2 == 0 ? "great, loved it" : "dull").append(" ok".repeat(i % 3)).append("\",")
                    .append(i % 2 == 0 ? 4.5 - i * 0.1 : 1.0 + i * 0.05).append('\n');
        Path data = write("scores.csv", csv.toString()), out = tmp.resolve("reg-lora");
        var r = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", data.toString(),
                "--dev", data.toString(), "--text-field", "sentence", "--label-field", "score", "--problem-type", "regression",
                "--method", "lora", "--epochs", "2", "--batch-size", "4", "--no-progress", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("neg_mse"), r.err());
        JsonNode saved = JSON.readTree(out.resolve("wafer_adapter.json").toFile());
        assertEquals("regression", saved.get("problem_type").asText());
        assertEquals("sentence", saved.at("/columns/text").asText());

        JsonNode dev = bestDev(out, "eval_mse", -1);
        var ev = wafer("evaluate", "--adapter", out.toString(), "--data", data.toString(), "--format", "json");
        assertEquals(0, ev.code(), ev.err());
        JsonNode j = JSON.readTree(ev.out());
        assertEquals(dev.get("eval_loss").asDouble(), j.get("loss").asDouble(), 1e-5, ev.out());
        assertEquals(dev.get("eval_mse").asDouble(), j.at("/regression/mse").asDouble(), 1e-6, ev.out());
        assertEquals(dev.get("eval_mae").asDouble(), j.at("/regression/mae").asDouble(), 1e-6, ev.out());
        assertEquals(dev.get("eval_pearson").asDouble(), j.at("/regression/pearson").asDouble(), 1e-6, ev.out());
        // MSELoss is the mean squared error: the loss and the report's MSE are one number
        assertEquals(j.get("loss").asDouble(), j.at("/regression/mse").asDouble(), 1e-5, ev.out());
        assertTrue(wafer("evaluate", "--adapter", out.toString(), "--data", data.toString()).out().contains("pearson"));

        // served: one number per text, evaluation's prediction
        List<String> sentences = new java.util.ArrayList<>();
        for (var row : ai.wafer.data.TextClassificationReader.read(data, new ai.wafer.data.TextClassificationReader.Columns("sentence", null, "score")))
            sentences.add(row.text());
        var scores = Evaluation.run(new Evaluation.Request(null, out, null, null, data, 4, null, ai.wafer.data.Batcher.Side.RIGHT, null), null).scores;
        JsonNode answers = served(base, out, sentences, null);
        for (int i = 0; i < sentences.size(); i++)
            assertEquals(Double.parseDouble(scores.pred().get(i).getFirst()), answers.get(i).get("score").asDouble(), 1e-5, "row " + i);
    }

    @Test
    void badRowsAreNamedByFileLineAndField() throws Exception {
        Path missing = write("missing.jsonl", "{\"q\": \"a\", \"y\": \"x\"}\n{\"q\": \"b\"}\n");
        var r = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", missing.toString(),
                "--text-field", "q", "--label-field", "y", "--out", tmp.resolve("no1").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains(missing + ":2: missing field \"y\""), r.err());

        Path list = write("list.jsonl", "{\"text\": \"a\", \"label\": [\"x\"]}\n");
        var l = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", list.toString(),
                "--out", tmp.resolve("no2").toString());
        assertEquals(2, l.code());
        assertTrue(l.err().contains(list + ":1: field \"label\" is a list"), l.err());

        Path word = write("word.csv", "text,label\nfine,3.5\nbad,high\n");
        var w = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", word.toString(),
                "--problem-type", "regression", "--out", tmp.resolve("no3").toString());
        assertEquals(2, w.code());
        assertTrue(w.err().contains(word + ":3: field \"label\" must be a finite number"), w.err());

        Path noPair = write("nopair.csv", "text,label\nfine,a\n");
        var p = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", noPair.toString(),
                "--text-pair-field", "second", "--out", tmp.resolve("no4").toString());
        assertEquals(2, p.code());
        assertTrue(p.err().contains(noPair + ":1: no column \"second\""), p.err());
    }
}
