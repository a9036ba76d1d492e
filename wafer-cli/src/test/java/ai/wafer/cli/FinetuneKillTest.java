package ai.wafer.cli;

import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import ai.wafer.track.MetricsLog;
import ai.wafer.train.TrainCheckpoint;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 17 item 2, as pretraining's kill test (PretrainRunTest): a fine-tuning process killed during step 5, after its
 * checkpoint of step 4, resumed in place with --resume latest, ends with the uninterrupted run's best model, final
 * trainable values and metrics, bit for bit.
 */
class FinetuneKillTest {
    @TempDir Path tmp;

    /** Bit-identical resume needs the same GEMM on both sides of the kill; another test may have changed it. */
    @BeforeEach
    void sameKernels() { ai.wafer.tensor.Gemm.setImpl(ai.wafer.tensor.Gemm.Impl.JAVA); }

    @AfterEach
    void defaultKernels() { ai.wafer.tensor.Gemm.setImpl(null); }

    private List<String> args(Path base, Path train, Path dev, String method, Path out) {
        return new ArrayList<>(List.of("finetune", "--model", base.toString(), "--task", "token-classification", "--train", train.toString(),
                "--dev", dev.toString(), "--eval-every", "1", "--method", method, "--lr", "1e-2", "--lora-dropout", "0.2", "--epochs", "2",
                "--batch-size", "2", "--grad-accum", "2", "--save-every", "2", "--no-progress", "--out", out.toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "full"})
    void killedFinetuneResumesToTheSameWeights(String method) throws Exception {
        Path base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1), base);
        TokenizerFiles.copy(Fixtures.TOKENIZER, base);
        StringBuilder conll = new StringBuilder();
        String[][] words = {{"EU", "B-ORG"}, {"rejects", "O"}, {"German", "B-MISC"}, {"call", "O"}, {"Peter", "B-PER"}, {"Bonn", "B-LOC"}};
        for (int i = 0; i < 26; i++) conll.append(words[i % 6][0]).append('\t').append(words[i % 6][1]).append(i % 3 == 2 ? "\n\n" : "\n");
        Path train = tmp.resolve("train.conll"), dev = tmp.resolve("dev.conll");
        Files.writeString(train, conll.toString());
        Files.writeString(dev, "Peter\tB-PER\nsays\tO\n\nEU\tB-ORG\n");
        Path whole = tmp.resolve("whole"), broken = tmp.resolve("broken");
        var w = PretrainCliTest.wafer(args(base, train, dev, method, whole).toArray(String[]::new));
        assertEquals(0, w.code(), w.err());
        int steps = MetricsLog.read(whole).size();
        assertEquals(6, steps, "9 sentences in batches of 2, 2 accumulated: 3 steps an epoch");

        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "ai.wafer.cli.HaltFinetuneAtStep", "5"));
        cmd.addAll(args(base, train, dev, method, broken));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("WAFER_GEMM", "java"); // the same kernels as this JVM (see @BeforeEach)
        Process p = pb.redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
        assertEquals(137, p.waitFor(), Files.readString(tmp.resolve("child.log")));
        assertEquals(TrainCheckpoint.dirFor(broken, 4), TrainCheckpoint.resolve(broken), "killed during step 5");
        assertEquals(4, MetricsLog.read(broken).size());

        List<String> again = args(base, train, dev, method, broken);
        again.addAll(List.of("--resume", "latest"));
        var r = PretrainCliTest.wafer(again.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        String model = method.equals("full") ? "model.safetensors" : "adapter_model.safetensors";
        for (Path[] files : new Path[][] {{whole.resolve(model), broken.resolve(model)},
                {TrainCheckpoint.dirFor(whole, steps).resolve("trainable.safetensors"), TrainCheckpoint.dirFor(broken, steps).resolve("trainable.safetensors")}}) {
            try (SafeTensors.Reader a = SafeTensors.open(files[0]); SafeTensors.Reader b = SafeTensors.open(files[1])) {
                assertEquals(a.names(), b.names());
                for (String n : a.names()) assertArrayEquals(a.floats(n), b.floats(n), files[1] + ": " + n);
            }
        }
        List<String> keys = List.of("step", "loss", "grad_norm", "lr", "eval_loss", "eval_accuracy");
        assertEquals(MetricsLog.read(whole).stream().map(m -> keys.stream().map(m::get).toList()).toList(),
                MetricsLog.read(broken).stream().map(m -> keys.stream().map(m::get).toList()).toList(), "each step once, the same numbers");
        assertFalse(Files.exists(broken.resolve("checkpoints/step-000005")));
        assertTrue(r.err().contains("best dev (step"), r.err());
    }
}
