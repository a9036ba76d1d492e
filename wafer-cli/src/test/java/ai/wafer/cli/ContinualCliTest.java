package ai.wafer.cli;

import ai.wafer.finetune.Ewc;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code wafer finetune} on task A, then on task B from A's model: plain, with --replay of A's data, and with --ewc
 * from the Fisher file --fisher-examples wrote; the options' errors.
 */
class ContinualCliTest {
    @TempDir static Path tmp;
    static Path base, a, taskA, taskB;

    @BeforeAll
    static void taskA() throws Exception {
        base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1), base);
        TokenizerFiles.copy(Fixtures.TOKENIZER, base);
        taskA = Files.writeString(tmp.resolve("a.conll"), "The\tat\njury\tnn\nsaid\tvbd\n\nIt\tpps\nran\tvbd\n\nA\tat\ndog\tnn\nbarked\tvbd\n");
        taskB = Files.writeString(tmp.resolve("b.conll"), "She\tpps\nlaughed\tvbd\n\nThe\tat\nnight\tnn\nfell\tvbd\nsoftly\trb\n\nHe\tpps\nwept\tvbd\n");
        a = tmp.resolve("a");
        var r = wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--train", taskA.toString(),
                "--method", "full", "--lr", "1e-2", "--epochs", "3", "--batch-size", "2", "--fisher-examples", "3", "--no-progress", "--out", a.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("fisher.safetensors (Fisher information over 3 training examples)"), r.err());
    }

    static PretrainCliTest.Run b(String name, String... more) {
        String[] args = {"finetune", "--model", a.toString(), "--task", "token-classification", "--train", taskB.toString(), "--method", "full",
                "--lr", "1e-2", "--epochs", "4", "--batch-size", "2", "--no-progress", "--out", tmp.resolve(name).toString()};
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return wafer(all);
    }

    /** A saved model's squared distance from A's weights, each weighted by its Fisher information (what EWC penalises). */
    static double distanceFromA(Path model) {
        double d = 0;
        try (var fa = SafeTensors.open(a.resolve("model.safetensors")); var fm = SafeTensors.open(model.resolve("model.safetensors"));
             var ff = SafeTensors.open(a.resolve(Ewc.FILE))) {
            for (String n : fa.names()) {
                float[] x = floats(fa, n), y = floats(fm, n), f = floats(ff, n.replace("transformer.", ""));
                for (int i = 0; i < x.length; i++) d += (double) f[i] * (x[i] - y[i]) * (x[i] - y[i]);
            }
        }
        return d;
    }

    static float[] floats(SafeTensors.Reader r, String name) { return r.segment(name).toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT); }

    @Test
    void taskBContinuesAsHeadAndLabelsAndEwcKeepsTheWeightsNearA() throws Exception {
        Map<String, long[]> fisher = new LinkedHashMap<>();
        try (var f = SafeTensors.open(a.resolve(Ewc.FILE))) {
            for (String n : f.names()) {
                fisher.put(n, f.info(n).shape());
                for (float v : floats(f, n)) assertTrue(v >= 0, n);
            }
        }
        Gpt shape = Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1);
        for (Parameter p : shape.parameters()) assertTrue(fisher.containsKey(p.name), p.name);
        assertTrue(fisher.containsKey("classifier.weight") && fisher.containsKey("classifier.bias"), fisher.keySet().toString());

        var plain = b("seq");
        assertEquals(0, plain.code(), plain.err());
        // A's head and labels go on (rb is not one of them: a warning, no loss)
        assertTrue(plain.err().contains("[rb]"), plain.err());
        var om = new ObjectMapper();
        assertEquals(om.readTree(a.resolve("config.json").toFile()).get("id2label"), om.readTree(tmp.resolve("seq/config.json").toFile()).get("id2label"));

        var ewc = b("ewc", "--ewc", "1e6");
        assertEquals(0, ewc.code(), ewc.err());
        double moved = distanceFromA(tmp.resolve("seq")), held = distanceFromA(tmp.resolve("ewc"));
        assertTrue(moved > 0 && held < moved / 4, "EWC's weights " + held + " from A's, plain " + moved);
        assertTrue(Files.readString(tmp.resolve("ewc/metrics.jsonl")).contains("\"ewc_penalty\""));

        var replay = b("replay", "--replay", taskA.toString(), "--replay-ratio", "0.5");
        assertEquals(0, replay.code(), replay.err());
        assertTrue(replay.err().contains("3 training examples, 12 steps (3 per epoch) of 2"), replay.err()); // a batch: 1 of B's 3 and 1 of A's
    }

    @Test
    void theOptionsRefuseWhatTheyCannotDo() throws Exception {
        var lora = wafer("finetune", "--model", a.toString(), "--task", "token-classification", "--train", taskB.toString(),
                "--method", "lora", "--no-progress", "--out", tmp.resolve("lora").toString());
        assertEquals(2, lora.code());
        assertTrue(lora.err().contains("is a fine-tuned token-classification model") && lora.err().contains("--method full"), lora.err());

        var noFisher = wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--train", taskB.toString(),
                "--method", "full", "--ewc", "10", "--no-progress", "--out", tmp.resolve("nofisher").toString());
        assertEquals(2, noFisher.code());
        assertTrue(noFisher.err().contains(Ewc.FILE) && noFisher.err().contains("--fisher-examples"), noFisher.err());
        var ewcLora = wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--train", taskB.toString(),
                "--ewc", "10", "--no-progress", "--out", tmp.resolve("ewclora").toString());
        assertEquals(2, ewcLora.code());
        assertTrue(ewcLora.err().contains("--ewc is for --method full"), ewcLora.err());
        var fisherLora = wafer("finetune", "--model", base.toString(), "--task", "token-classification", "--train", taskB.toString(),
                "--fisher-examples", "2", "--no-progress", "--out", tmp.resolve("fisherlora").toString());
        assertEquals(2, fisherLora.code());
        assertTrue(fisherLora.err().contains("--fisher-examples is for --method full"), fisherLora.err());

        // A's Fisher beside a model of another width: refused by the first tensor that differs
        Path wide = tmp.resolve("wide");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 8, 2, 50257, 32), 1), wide);
        Files.copy(a.resolve(Ewc.FILE), wide.resolve(Ewc.FILE));
        var mismatch = wafer("finetune", "--model", wide.toString(), "--tokenizer", base.toString(), "--task", "token-classification",
                "--train", taskB.toString(), "--method", "full", "--ewc", "10", "--no-progress", "--out", tmp.resolve("mismatch").toString());
        assertEquals(2, mismatch.code());
        assertTrue(mismatch.err().contains("wte.weight has shape [50257, 16]") && mismatch.err().contains("another model"), mismatch.err());

        var ratioAlone = b("ratio", "--replay-ratio", "0.5");
        assertEquals(2, ratioAlone.code());
        assertTrue(ratioAlone.err().contains("--replay-ratio without --replay"), ratioAlone.err());
        Path otherTags = Files.writeString(tmp.resolve("other.conll"), "Go\tvb\n");
        var badLabels = b("badlabels", "--replay", otherTags.toString());
        assertEquals(2, badLabels.code());
        assertTrue(badLabels.err().contains("labels the model does not have: [vb]"), badLabels.err());
        var parallel = b("par", "--ewc", "1", "--parallel", "dp=2");
        assertEquals(2, parallel.code());
        assertTrue(parallel.err().contains("drop --parallel"), parallel.err());
    }
}
