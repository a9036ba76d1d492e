package ai.wafer.cli;

import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static ai.wafer.testutil.Fixtures.fixture;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * README's "What Wafer promises" (issue 13): atomic outputs, no silent overwrite, non-finite values stopped and
 * reported, and clear errors for bad inputs. Each test names the issue item it covers.
 */
class PromisesTest {
    @TempDir Path tmp;
    static final Path TINY = fixture("gpt-tiny"), TOKENS = TINY.resolve("tokens.bin");

    /** {@link PretrainCliTest#wafer}, with what goes to System.err (warnings) added to the error text. */
    static PretrainCliTest.Run run(String... args) {
        var old = System.err;
        var buf = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(buf, true));
        try {
            PretrainCliTest.Run r = wafer(args);
            return new PretrainCliTest.Run(r.code(), r.out(), buf + r.err());
        } finally {
            System.setErr(old);
        }
    }

    static PretrainCliTest.Run assertFails(String expect, String... args) {
        PretrainCliTest.Run r = run(args);
        assertEquals(2, r.code(), r.err() + r.out());
        assertTrue(r.err().contains(expect), "expected '" + expect + "' in: " + r.err());
        assertFalse(r.err().contains("\tat "), "a stack trace: " + r.err());
        return r;
    }

    static String[] pretrain(Path out, String... more) {
        List<String> a = new java.util.ArrayList<>(List.of("pretrain", "--init", TINY.toString(), "--data", TOKENS.toString(),
                "--batch-size", "2", "--seq-len", "8", "--no-progress", "--out", out.toString()));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    /** A one-layer model with the GPT-2 vocabulary and tokenizer, for fine-tuning. */
    static Path base(Path dir) {
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1), dir);
        TokenizerFiles.copy(Fixtures.TOKENIZER, dir);
        return dir;
    }

    // ---- 1: outputs are written whole or not at all

    @Test
    void tokenizeRefusesItsInputAsOutputAndAFailedRunKeepsTheOldOutput() throws Exception {
        Path in = tmp.resolve("in.jsonl"), out = tmp.resolve("out.jsonl");
        Files.writeString(in, "{\"text\": \"hello\"}\n");
        String tok = Fixtures.TOKENIZER.toString();
        assertFails("is the --input file", "tokenize", "--tokenizer", tok, "--input", in.toString(), "--output", in.toString());
        assertEquals("{\"text\": \"hello\"}\n", Files.readString(in));

        Files.writeString(out, "precious\n");
        Files.writeString(in, "{\"text\": \"hello\"}\n{\"no text\": 1}\n");
        assertFails("in.jsonl:2", "tokenize", "--tokenizer", tok, "--input", in.toString(), "--output", out.toString());
        assertEquals("precious\n", Files.readString(out));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of("in.jsonl", "out.jsonl"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    // ---- 2: an existing run or model is written into only when --resume or --overwrite says so

    @Test
    void pretrainRefusesAnEarlierRunUnlessOverwriteOrResume() throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(0, wafer(pretrain(out, "--steps", "2", "--save-every", "1")).code());
        assertTrue(Files.isDirectory(out.resolve("checkpoints")));
        String metrics = Files.readString(out.resolve("metrics.jsonl"));
        var r = assertFails(out.toString(), pretrain(out, "--steps", "1"));
        assertTrue(r.err().contains("--resume") && r.err().contains("--overwrite"), r.err());
        assertEquals(metrics, Files.readString(out.resolve("metrics.jsonl")));
        // --resume continues it; --overwrite replaces it, the old run's checkpoints included
        assertEquals(0, wafer(pretrain(out, "--steps", "3", "--resume", out.toString())).code());
        assertEquals(0, wafer(pretrain(out, "--steps", "1", "--overwrite")).code());
        try (var s = Files.list(out.resolve("checkpoints"))) { // the old run's checkpoints are gone; the new run's last step is one
            assertEquals(List.of("step-000001"), s.map(p -> p.getFileName().toString()).toList());
        }
        assertEquals(1, Files.readAllLines(out.resolve("metrics.jsonl")).size());
    }

    @Test
    void theInputModelIsNeverTheOutput() throws Exception {
        Path m = tmp.resolve("m");
        Checkpoint.save(Checkpoint.load(TINY), m);
        byte[] before = Files.readAllBytes(m.resolve("model.safetensors"));
        assertFails("is an input", "pretrain", "--init", m.toString(), "--data", TOKENS.toString(), "--steps", "1",
                "--seq-len", "8", "--out", m.toString(), "--overwrite");
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(m.resolve("model.safetensors"))));
        Path b = base(tmp.resolve("base"));
        before = Files.readAllBytes(b.resolve("model.safetensors"));
        Files.writeString(tmp.resolve("train.conll"), "a\tX\nb\tY\n");
        assertFails("is an input", "finetune", "--model", b.toString(), "--task", "token-classification", "--train",
                tmp.resolve("train.conll").toString(), "--method", "full", "--out", b.toString(), "--overwrite");
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(b.resolve("model.safetensors"))));
    }

    @Test
    void prepareRefusesEarlierShards() throws Exception {
        Path in = tmp.resolve("a.txt"), out = tmp.resolve("shards");
        Files.writeString(in, "Some text.\n");
        String tok = Fixtures.TOKENIZER.toString();
        assertEquals(0, wafer("prepare", "--tokenizer", tok, "--input", in.toString(), "--out", out.toString()).code());
        assertFails("--overwrite", "prepare", "--tokenizer", tok, "--input", in.toString(), "--out", out.toString());
        assertEquals(0, wafer("prepare", "--tokenizer", tok, "--input", in.toString(), "--out", out.toString(), "--overwrite").code());
    }

    // ---- 14: non-finite training values stop the run; bad hyperparameters are refused by name

    @Test
    void aDivergingRunStopsAtTheStepAndKeepsTheLastFiniteCheckpoint() throws Exception {
        Path out = tmp.resolve("run");
        assertFails("step 2", pretrain(out, "--steps", "5", "--save-every", "1", "--lr", "1e30", "--grad-clip", "0"));
        assertFalse(Files.exists(out.resolve("config.json")), "no final model");
        try (Stream<Path> s = Files.list(out.resolve("checkpoints"))) {
            List<Path> kept = s.toList();
            assertEquals(1, kept.size(), kept.toString());
            try (SafeTensors.Reader r = SafeTensors.open(kept.getFirst().resolve("model.safetensors"))) {
                for (String n : r.names()) for (float v : r.floats(n)) assertTrue(Float.isFinite(v), n);
            }
        }
        // a NaN in the starting weights: step 1
        Gpt nan = Checkpoint.load(TINY);
        Parameter p = nan.parameter("h.0.mlp.c_fc.weight");
        p.data[p.off] = Float.NaN;
        Checkpoint.save(nan, tmp.resolve("nan"));
        assertFails("step 1: the loss is NaN", "pretrain", "--init", tmp.resolve("nan").toString(), "--data", TOKENS.toString(),
                "--batch-size", "2", "--seq-len", "8", "--steps", "2", "--no-progress", "--out", tmp.resolve("run2").toString());
    }

    @Test
    void hyperparametersOutOfRangeAreRefusedByName() {
        Path out = tmp.resolve("run");
        assertFails("--lr", pretrain(out, "--steps", "1", "--lr", "NaN"));
        assertFails("--beta2", pretrain(out, "--steps", "1", "--beta2", "1"));
        assertFails("--eps", pretrain(out, "--steps", "1", "--eps", "0"));
        assertFails("--weight-decay", pretrain(out, "--steps", "1", "--weight-decay", "-1"));
        assertFails("--grad-clip", pretrain(out, "--steps", "1", "--grad-clip", "NaN"));
        assertFails("--min-lr-ratio", pretrain(out, "--steps", "1", "--min-lr-ratio", "NaN"));
        assertFalse(Files.exists(out.resolve("metrics.jsonl")), "refused before training");
    }

    @Test
    void finetuneRefusesBadHyperparametersAndStopsOnNonFiniteValues() throws Exception {
        Path base = base(tmp.resolve("base"));
        Path train = tmp.resolve("train.conll");
        Files.writeString(train, "EU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n");
        String[] args = {"finetune", "--model", base.toString(), "--task", "token-classification", "--train", train.toString(),
                "--method", "full", "--batch-size", "1", "--epochs", "2", "--no-progress", "--out", tmp.resolve("ft").toString()};
        String[] warm = Stream.concat(Stream.of(args), Stream.of("--warmup-ratio", "2")).toArray(String[]::new);
        assertFails("--warmup-ratio", warm);
        String[] huge = Stream.concat(Stream.of(args), Stream.of("--lr", "1e30", "--grad-clip", "0")).toArray(String[]::new);
        assertFails("training stopped", huge);
    }

    // ---- 15: no NaN in JSON: a non-finite result is an error

    @Test
    void evalLmOnANanModelIsAnError() throws Exception {
        Gpt nan = Checkpoint.load(TINY);
        Parameter p = nan.parameter("ln_f.weight");
        p.data[p.off] = Float.NaN;
        Checkpoint.save(nan, tmp.resolve("nan"));
        var r = assertFails("not finite", "eval-lm", "--model", tmp.resolve("nan").toString(), "--data", TOKENS.toString(),
                "--batch-size", "2", "--seq-len", "8", "--batches", "2");
        assertFalse(r.out().contains("NaN"), r.out());
    }

    @Test
    void evaluateAndEvalChoiceOnANanModelAreErrors() throws Exception {
        Path m = base(tmp.resolve("nan"));
        Gpt nan = Checkpoint.load(m);
        Parameter p = nan.parameter("ln_f.weight");
        p.data[p.off] = Float.NaN;
        Checkpoint.save(nan, m);
        Path chat = tmp.resolve("chat.jsonl"), choice = tmp.resolve("choice.jsonl");
        Files.writeString(chat, "{\"prompt\": \"Say hi\", \"response\": \"hi\"}\n");
        Files.writeString(choice, "{\"context\": \"The sky is\", \"choices\": [\" blue\", \" green\"], \"label\": 0}\n");
        var r = assertFails("not finite", "evaluate", "--model", m.toString(), "--task", "causal-lm", "--data", chat.toString(), "--format", "json");
        assertFalse(r.out().contains("NaN"), r.out());
        r = assertFails("choice.jsonl:1", "eval-choice", "--model", m.toString(), "--data", choice.toString());
        assertFalse(r.out().contains("acc"), r.out());
    }

    // ---- 16: prepare does not lose text silently

    @Test
    void prepareWarnsOfLoneSurrogatesAndRefusesEmptyInputAndEmptyMerges() throws Exception {
        String tok = Fixtures.TOKENIZER.toString();
        Path in = tmp.resolve("a.jsonl");
        Files.writeString(in, "{\"text\": \"fine\"}\n{\"text\": \"ab\\ud800c\"}\n");
        var r = run("prepare", "--tokenizer", tok, "--input", in.toString(), "--out", tmp.resolve("s1").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("1 lone UTF-16 surrogates") && r.err().contains("line 2, character 3"), r.err());

        Path empty = tmp.resolve("empty.txt");
        Files.writeString(empty, "\n\n");
        assertFails("no documents", "prepare", "--tokenizer", tok, "--input", empty.toString(), "--out", tmp.resolve("s2").toString());

        Path noMerges = tmp.resolve("tok");
        Files.createDirectories(noMerges);
        Files.copy(Fixtures.TOKENIZER.resolve("vocab.json"), noMerges.resolve("vocab.json"));
        Files.writeString(noMerges.resolve("merges.txt"), "#version: 0.2\n");
        assertFails("merges.txt: no merges", "prepare", "--tokenizer", noMerges.toString(), "--input", in.toString(),
                "--out", tmp.resolve("s3").toString());
    }

    // ---- 18: a config's dimensions are checked before anything is allocated

    @Test
    void hugeDimensionsAreOneClearErrorNotAFailedAllocation() throws Exception {
        Path m = tmp.resolve("huge");
        Files.createDirectories(m);
        Files.copy(TINY.resolve("model.safetensors"), m.resolve("model.safetensors"));
        var cfg = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper().readTree(TINY.resolve("config.json").toFile());
        cfg.put("n_embd", 1 << 20).put("n_head", 1);
        Files.writeString(m.resolve("config.json"), cfg.toString());
        assertFails("exceeds the 2147483647 a Java array holds", "eval-lm", "--model", m.toString(), "--data", TOKENS.toString());
        cfg.put("n_embd", 48).put("n_head", 4).put("n_layer", 4000);
        Files.writeString(m.resolve("config.json"), cfg.toString());
        assertFails("no tensor h.3999.mlp.c_fc.weight", "eval-lm", "--model", m.toString(), "--data", TOKENS.toString());
        assertFails("GB of memory", "pretrain", "--preset", "mini", "--n-layer", "1000000", "--data", TOKENS.toString(),
                "--steps", "1", "--out", tmp.resolve("run").toString());
    }

    // ---- 21: messages that name what is wrong

    @Test
    void aClassifierCannotGenerate() throws Exception {
        Gpt g = Gpt.init(GptConfig.of(1, 16, 2, 101, 32), 1);
        var arch = new ObjectMapper().createArrayNode().add("GPT2ForTokenClassification");
        var labels = new ObjectMapper().createObjectNode().put("0", "O").put("1", "X");
        GptConfig cfg = g.config.withExtra("architectures", arch).withExtra("id2label", labels);
        Checkpoint.save(g, cfg, Map.of("classifier.weight", new Parameter("classifier.weight", 2, 16),
                "classifier.bias", new Parameter("classifier.bias", 2)), tmp.resolve("cls"));
        assertFails("cannot generate", "generate", "--model", tmp.resolve("cls").toString(), "--prompt", "hi", "--max-tokens", "2");
    }

    @Test
    void aBadVocabJsonIsNamed() throws Exception {
        Path t = tmp.resolve("tok");
        Files.createDirectories(t);
        Files.writeString(t.resolve("vocab.json"), "{\"a\": 0,\n \"b\": }\n");
        Files.copy(Fixtures.TOKENIZER.resolve("merges.txt"), t.resolve("merges.txt"));
        assertFails(t.resolve("vocab.json") + ":2:", "tokenize", "--tokenizer", t.toString(), "--text", "hi");
    }

    @Test
    void aLatin1ConllFileIsNamedWithItsLine() throws Exception {
        Path base = base(tmp.resolve("base"));
        Path train = tmp.resolve("latin1.conll");
        Files.write(train, "EU\tB-ORG\n\nK\u00f6ln\tB-LOC\n".getBytes(StandardCharsets.ISO_8859_1));
        assertFails("latin1.conll:3: invalid UTF-8 (byte 0xF6 at byte 2 of the line)", "finetune", "--model", base.toString(),
                "--task", "token-classification", "--train", train.toString(), "--out", tmp.resolve("ft").toString());
    }

    /** Options that would do nothing are refused by name, not ignored. */
    @Test
    void optionsThatWouldDoNothingAreRefused() throws Exception {
        Path items = tmp.resolve("items.jsonl");
        Files.writeString(items, "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"label\": 0}\n");
        assertFails("--fewshot-data needs --num-fewshot", "eval-choice", "--model", TINY.toString(), "--data", items.toString(),
                "--fewshot-data", items.toString());
    }
}
