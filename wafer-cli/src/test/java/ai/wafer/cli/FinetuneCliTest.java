package ai.wafer.cli;

import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code wafer finetune} and {@code wafer evaluate} end to end on a one-layer model, and their errors on bad input. */
class FinetuneCliTest {
    @TempDir static Path tmp;
    static Path base, otherBase;

    static Path model(String name, long seed) throws Exception {
        Path dir = tmp.resolve(name);
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), seed), dir);
        TokenizerFiles.copy(Fixtures.TOKENIZER, dir);
        return dir;
    }

    @BeforeAll
    static void models() throws Exception {
        base = model("base", 1);
        otherBase = model("other", 2);
    }

    static Path write(String name, String text) throws Exception {
        Path f = tmp.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    @Test
    void tokenClassificationWithLora() throws Exception {
        Path train = write("train.conll", "EU\tB-ORG\nrejects\tO\nGerman\tB-MISC\ncall\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n\nBonn\tB-LOC\nsays\tO\n");
        // B-DATE is not in the training file: a warning, no loss, and an error when scored
        Path dev = write("dev.conll", "Peter\tB-PER\nsays\tO\nMonday\tB-DATE\n");
        Path out = tmp.resolve("ner-lora");
        var r = wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--train", train.toString(),
                "--dev", dev.toString(), "--method", "lora", "--lora-targets", "c_attn,mlp.c_proj", "--epochs", "2",
                "--batch-size", "2", "--padding-side", "left", "--no-progress", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("[B-DATE]"), r.err());
        assertTrue(r.err().matches("(?s).*trainable [0-9,]+ of [0-9,]+ \\([0-9.]+%\\).*"), r.err());
        for (String f : new String[] {"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "curves.png"})
            assertTrue(Files.exists(out.resolve(f)), f);
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
        assertEquals("TOKEN_CLS", cfg.get("task_type").asText());
        assertEquals("classifier", cfg.get("modules_to_save").get(0).asText());

        var ev = wafer("evaluate", "--model", base.toString(), "--adapter", out.toString(), "--data", dev.toString());
        assertEquals(0, ev.code(), ev.err());
        assertTrue(ev.out().contains("precision    recall  f1-score   support"), ev.out());
        assertTrue(ev.out().contains("B-DATE") && ev.out().contains("weighted avg") && ev.out().contains("accuracy"), ev.out());
        assertTrue(ev.out().contains("seqeval default mode") && ev.out().contains("strict mode, IOB2"), ev.out());
        var js = wafer("evaluate", "--model", base.toString(), "--adapter", out.toString(), "--data", dev.toString(), "--format", "json");
        JsonNode j = new ObjectMapper().readTree(js.out());
        assertTrue(j.get("report").has("B-PER") && j.has("entity_report_strict"), js.out());

        // the same shape, other weights: refused
        var wrong = wafer("evaluate", "--model", otherBase.toString(), "--adapter", out.toString(), "--data", dev.toString());
        assertEquals(2, wrong.code());
        assertTrue(wrong.err().contains("another base model"), wrong.err());
    }

    /**
     * Issue 17 item 3: evaluate scores as training did. An adapter trained with --max-length 6 on texts longer than
     * that is evaluated with neither --model (the adapter names its base, found from the adapter's own directory) nor
     * --max-length (saved with the adapter): the same loss and accuracy as training's last dev evaluation.
     */
    @Test
    void evaluateReproducesTrainingScoresFromTheAdapterAlone() throws Exception {
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < 12; i++)
            lines.append("{\"text\": \"").append(i % 2 == 0 ? "win money now " : "meeting at noon ").append("filler ".repeat(i)).append("\", \"label\": \"")
                    .append(i % 2 == 0 ? "spam" : "ham").append("\"}\n");
        Path data = write("pairs.jsonl", lines.toString()), out = tmp.resolve("moved/spam-ia3");
        var r = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", data.toString(),
                "--dev", data.toString(), "--method", "ia3", "--epochs", "1", "--batch-size", "4", "--max-length", "6",
                "--no-progress", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode lastDev = null;
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            JsonNode row = new ObjectMapper().readTree(line);
            if (row.has("eval_accuracy")) lastDev = row;
        }
        var ev = wafer("evaluate", "--adapter", out.toString(), "--data", data.toString(), "--format", "json");
        assertEquals(0, ev.code(), ev.err());
        JsonNode j = new ObjectMapper().readTree(ev.out());
        assertEquals(lastDev.get("eval_loss").asDouble(), j.get("loss").asDouble(), 1e-5, ev.out());
        assertEquals(lastDev.get("eval_accuracy").asDouble(), j.at("/report/accuracy").asDouble(), 1e-9, ev.out());
        // the full context instead scores differently: the saved length was used
        var full = new ObjectMapper().readTree(wafer("evaluate", "--adapter", out.toString(), "--data", data.toString(), "--format", "json",
                "--max-length", "32").out());
        assertNotEquals(j.get("loss").asDouble(), full.get("loss").asDouble());
    }

    @Test
    void sequenceClassificationFullTruncatesLongTexts() throws Exception {
        String longText = "word ".repeat(60);
        Path train = write("train.jsonl", "{\"text\": \"win money now\", \"label\": \"spam\"}\n{\"text\": \"meeting at noon\", \"label\": \"ham\"}\n"
                + "{\"text\": \"" + longText + "\", \"label\": \"ham\"}\n");
        Path out = tmp.resolve("spam-full");
        var r = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", train.toString(),
                "--dev", train.toString(), "--method", "full", "--epochs", "1", "--batch-size", "2", "--max-length", "16",
                "--no-progress", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("truncated"), r.err());
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("GPT2ForSequenceClassification", cfg.get("architectures").get(0).asText());
        assertEquals("spam", cfg.get("id2label").get("1").asText());
        assertEquals(2, cfg.get("num_labels").asInt());
        Path png = tmp.resolve("cm.png");
        var ev = wafer("evaluate", "--model", out.toString(), "--data", train.toString(), "--max-length", "16", "--confusion-png", png.toString());
        assertEquals(0, ev.code(), ev.err());
        assertTrue(ev.out().contains("gold\\pred") && Files.size(png) > 0, ev.out());
        // rows of 3, 3 and 16 tokens in one batch: padded left, the same loss and report
        String[] json = {"evaluate", "--model", out.toString(), "--data", train.toString(), "--max-length", "16",
                "--confusion-png", png.toString(), "--format", "json", "--padding-side", "right"};
        JsonNode right = new ObjectMapper().readTree(wafer(json).out());
        json[json.length - 1] = "left";
        var leftRun = wafer(json);
        assertEquals(0, leftRun.code(), leftRun.err());
        JsonNode left = new ObjectMapper().readTree(leftRun.out());
        assertEquals(right.get("loss").asDouble(), left.get("loss").asDouble(), 1e-5);
        assertEquals(right.get("report"), left.get("report"));
        json[json.length - 1] = "middle";
        var bad = wafer(json);
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("padding side must be left or right"), bad.err());

        var tooLong = wafer("finetune", "--model", base.toString(), "--task", "sequence-classification", "--train", train.toString(),
                "--max-length", "64", "--out", tmp.resolve("x").toString());
        assertEquals(2, tooLong.code());
        assertTrue(tooLong.err().contains("n_positions 32"), tooLong.err());
    }

    @Test
    void causalLmOnResponsesWithMergedLora() throws Exception {
        Path train = write("chat.jsonl", "{\"prompt\": \"Say hi\", \"response\": \"hi\"}\n{\"prompt\": \"Count\", \"response\": \"one two\"}\n");
        Path out = tmp.resolve("chat-lora");
        var r = wafer("finetune", "--model", base.toString(), "--task", "causal-lm", "--train", train.toString(), "--dev", train.toString(),
                "--method", "lora", "--lora-dropout", "0", "--merge", "--epochs", "2", "--batch-size", "2", "--no-progress", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        var a = wafer("evaluate", "--model", base.toString(), "--adapter", out.toString(), "--data", train.toString(), "--format", "json");
        var m = wafer("evaluate", "--model", out.resolve("merged").toString(), "--data", train.toString(), "--format", "json");
        assertEquals(0, a.code(), a.err());
        assertEquals(0, m.code(), m.err());
        double la = new ObjectMapper().readTree(a.out()).get("loss").asDouble(), lm = new ObjectMapper().readTree(m.out()).get("loss").asDouble();
        assertEquals(la, lm, 1e-4, "merged and unmerged LoRA give the same loss");
    }

    @Test
    void badInput() throws Exception {
        Path train = write("t.conll", "a\tX\n");
        var r = wafer("finetune", "--model", base.toString(), "--task", "ner", "--train", train.toString(), "--out", tmp.resolve("y").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("unknown task 'ner'"), r.err());
        var m = wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--method", "lora",
                "--lora-targets", "q_proj", "--train", train.toString(), "--out", tmp.resolve("z").toString());
        assertEquals(2, m.code());
        assertTrue(m.err().contains("q_proj"), m.err());
    }

    /**
     * Issue 17 item 2 on the command line: a run of 4 steps (--max-steps) ends with a checkpoint, and --resume latest
     * continues it in place to 6, bit for bit the 6-step run (a constant schedule: the budget does not change the
     * rates); metrics.jsonl holds each step once and TensorBoard is told to drop nothing before step 5. The options
     * show their defaults; another method, or --mpi, is refused by name.
     */
    @Test
    void finetuneResumesItsLatestCheckpoint() throws Exception {
        Path train = write("resume.conll", "EU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n\nBonn\tB-LOC\nsays\tO\n\n"
                + "German\tB-MISC\ncall\tO\n\nMonday\tO\n\nParis\tB-LOC\n");
        java.util.function.BiFunction<String, String[], String[]> run = (out, extra) -> {
            java.util.List<String> a = new java.util.ArrayList<>(java.util.List.of("finetune", "--model", base.toString(), "--task",
                    "token-classification", "--train", train.toString(), "--batch-size", "2", "--schedule", "constant",
                    "--warmup-ratio", "0", "--no-progress", "--out", tmp.resolve(out).toString()));
            a.addAll(java.util.List.of(extra));
            if (!a.contains("--method")) a.addAll(java.util.List.of("--method", "lora"));
            return a.toArray(String[]::new);
        };
        var whole = wafer(run.apply("whole6", new String[] {"--max-steps", "6"}));
        assertEquals(0, whole.code(), whole.err());
        var part = wafer(run.apply("part", new String[] {"--max-steps", "4"}));
        assertEquals(0, part.code(), part.err());
        assertTrue(Files.isDirectory(tmp.resolve("part/checkpoints/step-000004")), "the last step is a checkpoint");
        var other = wafer(run.apply("part", new String[] {"--max-steps", "6", "--resume", "latest", "--method", "ia3"}));
        assertEquals(2, other.code());
        assertTrue(other.err().contains("--method differs from the run this checkpoint continues: it had lora"), other.err());
        var mpi = wafer(run.apply("part", new String[] {"--resume", "latest", "--parallel", "dp=2", "--mpi"}));
        assertEquals(2, mpi.code());
        assertTrue(mpi.err().contains("--resume with --mpi"), mpi.err());
        var resumed = wafer(run.apply("part", new String[] {"--max-steps", "6", "--resume", "latest"}));
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.err().contains("resumed from " + tmp.resolve("part/checkpoints/step-000004") + " at step 4"), resumed.err());
        try (var a = ai.wafer.io.SafeTensors.open(tmp.resolve("whole6/adapter_model.safetensors"));
             var b = ai.wafer.io.SafeTensors.open(tmp.resolve("part/adapter_model.safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) org.junit.jupiter.api.Assertions.assertArrayEquals(a.floats(n), b.floats(n), n);
        }
        java.util.function.Function<String, java.util.List<Object>> steps = dir -> ai.wafer.track.MetricsLog.read(tmp.resolve(dir)).stream()
                .map(row -> (Object) java.util.List.of(row.get("step"), row.get("loss"), row.get("grad_norm"), row.get("lr"))).toList();
        assertEquals(steps.apply("whole6"), steps.apply("part"), "each step once, with the whole run's numbers");
        try (var files = Files.list(tmp.resolve("part"))) {
            var ev = files.filter(f -> f.getFileName().toString().startsWith("events.out.tfevents")).sorted().toList();
            assertEquals(2, ev.size());
            var starts = ai.wafer.track.TensorBoardReader.readEvents(ev.getLast()).stream().filter(e -> e.sessionStatus() == 1).toList();
            assertEquals(5, starts.getFirst().step(), "TensorBoard purges from the first redone step");
        }
        String help = Wafer.commandLine().getSubcommands().get("finetune").getUsageMessage();
        for (String o : new String[] {"--max-steps=N", "--save-every=N", "--keep-checkpoints=N", "--resume=DIR|latest"}) assertTrue(help.contains(o), help);
        assertTrue(help.contains("max_steps; 0 = off, default 0)") && help.contains("step always writes one (default 0)")
                && help.contains("(0 = keep all; default 3)"), help);
    }
}
