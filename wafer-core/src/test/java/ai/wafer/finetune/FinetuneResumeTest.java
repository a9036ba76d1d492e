package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import ai.wafer.testutil.ToyTasks;
import ai.wafer.track.MetricsLog;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.TrainCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 17 item 2: a fine-tuning run stopped at step k and resumed from its checkpoint in a fresh model reproduces the
 * uninterrupted run bit for bit (every step's loss and gradient norm, the final trainable values), whatever the method
 * and task; a finished run's last checkpoint continues to a larger --max-steps; a resume of another run is refused by
 * the option that differs.
 */
class FinetuneResumeTest {
    @TempDir Path tmp;

    static final GptConfig CFG = GptConfig.of(2, 16, 2, 31, 32);
    /** LoRA with dropout: the mask streams must be where the stopped run left them. */
    static final Peft.Spec LORA = new Peft.Spec(Peft.Kind.LORA, new Lora.Config(4, 8, 0.3f, List.of("c_attn", "c_fc")), 0, 0, 0);

    static Peft.Spec spec(String method) { return method.equals("lora") ? LORA : Peft.Spec.of(Peft.Kind.parse(method)); }

    static TaskData data(Task task, int n, long seed) {
        return switch (task) {
            case TOKEN_CLASSIFICATION -> ToyTasks.tagging(n, seed, 10);
            case SEQUENCE_CLASSIFICATION -> ToyTasks.classification(n, seed, 10);
            case CAUSAL_LM -> ToyTasks.counting(n, seed, 10);
        };
    }

    /** 40 examples in batches of 8 with 2 accumulated: 3 steps an epoch (the last of one batch), a linear schedule with warmup. */
    static Finetuner.Options options(LrSchedule.Kind schedule, float warmup) {
        var d = Finetuner.Options.defaults(Peft.Kind.LORA);
        return new Finetuner.Options(3, 8, 2, 5e-3f, schedule, warmup, d.minLrRatio(), d.hyper(), d.gradClip(), d.maxLength(),
                2, 0, d.seed(), false, d.padding());
    }

    record Run(List<Double> losses, List<Double> norms, Map<String, float[]> values, Finetuner.Result result) {}

    /** A fresh model (the same base and seed each time) trained into {@code out}; what metrics.jsonl says and the trainable values. */
    static Run train(Gpt base, Peft.Spec spec, TaskData train, TaskData dev, Finetuner.Options o, Finetuner.Checkpoints ck, Path out) {
        FinetuneModel fm = FinetuneModel.create(base, train.task(), train.labels(), spec, 30, 4);
        Finetuner.Result r = new Finetuner(fm, train, dev, o).checkpoints(ck).run(out, "toy", null);
        List<Double> losses = new ArrayList<>(), norms = new ArrayList<>();
        for (Map<String, Object> row : MetricsLog.read(out)) {
            losses.add(((Number) row.get("loss")).doubleValue());
            norms.add(((Number) row.get("grad_norm")).doubleValue());
        }
        Map<String, float[]> values = new LinkedHashMap<>();
        for (Parameter p : fm.parameters()) if (p.trainable()) values.put(p.name, Arrays.copyOfRange(p.data, p.off, p.off + p.size()));
        return new Run(losses, norms, values, r);
    }

    static void assertSame(Run want, Run got) {
        assertEquals(want.losses(), got.losses(), "every step's loss, bit for bit");
        assertEquals(want.norms(), got.norms(), "every step's gradient norm, bit for bit");
        assertEquals(want.values().keySet(), got.values().keySet());
        for (String n : want.values().keySet()) assertArrayEquals(want.values().get(n), got.values().get(n), n);
        assertEquals(want.result().bestStep(), got.result().bestStep());
        assertEquals(want.result().bestScore(), got.result().bestScore());
    }

    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"lora, TOKEN_CLASSIFICATION", "full, TOKEN_CLASSIFICATION", "lora, SEQUENCE_CLASSIFICATION",
            "full, SEQUENCE_CLASSIFICATION", "ia3, CAUSAL_LM", "prefix, SEQUENCE_CLASSIFICATION", "adapter, TOKEN_CLASSIFICATION",
            "top-k, CAUSAL_LM"})
    void aStoppedRunResumesBitForBit(String method, Task task) {
        TaskData train = data(task, 40, 1), dev = data(task, 12, 2);
        Gpt base = Gpt.init(CFG, 3);
        Finetuner.Options o = options(LrSchedule.Kind.LINEAR, 0.2f);
        Run whole = train(base, spec(method), train, dev, o, new Finetuner.Checkpoints(0, 4, 0, null), tmp.resolve("whole"));
        assertEquals(9, whole.losses().size());
        for (int s : new int[] {4, 8, 9}) assertTrue(Files.isDirectory(TrainCheckpoint.dirFor(tmp.resolve("whole"), s)), "step " + s);
        // step 4 stops in the middle of epoch 2, in the middle of its schedule, after 2 of 4 evaluations
        Run resumed = train(Gpt.init(CFG, 3), spec(method), train, dev, o,
                new Finetuner.Checkpoints(0, 4, 0, TrainCheckpoint.dirFor(tmp.resolve("whole"), 4)), tmp.resolve("resumed"));
        assertSame(whole, resumed);
        assertEquals(5, resumed.result().steps() - 4, "the resumed run ran steps 5..9");
    }

    /**
     * LoRA dropout's mask streams are part of the state: 7 micro-batches drew 7 seeds a layer by step 4 (epoch 1 has
     * steps of 2, 2 and 1), and the resumed run ends with 15 as the whole run does. A checkpoint edited to say the
     * streams were fresh resumes into another run: the test above would see a stream not restored.
     */
    @Test
    void loraDropoutMaskStreamsAreRestored() throws Exception {
        TaskData train = data(Task.TOKEN_CLASSIFICATION, 40, 1);
        Finetuner.Options o = options(LrSchedule.Kind.LINEAR, 0.2f);
        Run whole = train(Gpt.init(CFG, 3), LORA, train, null, o, new Finetuner.Checkpoints(0, 4, 0, null), tmp.resolve("whole"));
        Path ck = TrainCheckpoint.dirFor(tmp.resolve("whole"), 4);
        assertEquals("[7,7,7,7]", TrainCheckpoint.state(ck).path("finetune").path("randomState").toString(), "two targets in two layers");
        FinetuneModel fm = FinetuneModel.create(Gpt.init(CFG, 3), Task.TOKEN_CLASSIFICATION, train.labels(), LORA, 30, 4);
        new Finetuner(fm, train, null, o).checkpoints(new Finetuner.Checkpoints(0, 0, 0, ck)).run(tmp.resolve("resumed"), "toy", null);
        assertArrayEquals(new long[] {15, 15, 15, 15}, fm.method.randomState());

        Path edited = TrainCheckpoint.dirFor(tmp.resolve("edited"), 4);
        Files.createDirectories(edited);
        try (var files = Files.list(ck)) {
            for (Path f : files.toList()) Files.copy(f, edited.resolve(f.getFileName()));
        }
        Files.writeString(edited.resolve("state.json"), Files.readString(ck.resolve("state.json")).replaceAll(
                "\"randomState\"\\s*:\\s*\\[[^]]*]", "\"randomState\":[0,0,0,0]"));
        Run other = train(Gpt.init(CFG, 3), LORA, train, null, o, new Finetuner.Checkpoints(0, 0, 0, edited), tmp.resolve("edited"));
        assertEquals(5, other.losses().size(), "steps 5..9");
        assertNotEquals(whole.losses().subList(4, 9), other.losses());
    }

    /** A run's last step is a checkpoint; resumed with a larger --max-steps, it continues to the longer run's weights (constant schedule). */
    @Test
    void aFinishedRunContinuesToMoreSteps() {
        TaskData train = data(Task.TOKEN_CLASSIFICATION, 40, 1), dev = data(Task.TOKEN_CLASSIFICATION, 12, 2);
        Finetuner.Options o = options(LrSchedule.Kind.CONSTANT, 0f);
        Run eleven = train(Gpt.init(CFG, 3), LORA, train, dev, o, new Finetuner.Checkpoints(11, 0, 3, null), tmp.resolve("eleven"));
        assertEquals(11, eleven.losses().size(), "--max-steps 11 runs past --epochs 3 (9 steps)");
        Path five = tmp.resolve("five");
        train(Gpt.init(CFG, 3), LORA, train, dev, o, new Finetuner.Checkpoints(5, 0, 3, null), five);
        assertEquals(TrainCheckpoint.dirFor(five, 5), TrainCheckpoint.resolve(five), "the last step is the one checkpoint");
        Run more = train(Gpt.init(CFG, 3), LORA, train, dev, o, new Finetuner.Checkpoints(11, 0, 3, five), five);
        assertSame(eleven, more);
        // and in place: metrics.jsonl holds each step once, and the checkpoints of both parts are there
        assertEquals(11, MetricsLog.read(five).size());
        assertTrue(Files.isDirectory(TrainCheckpoint.dirFor(five, 5)) && Files.isDirectory(TrainCheckpoint.dirFor(five, 11)));
        // a finished run resumed with nothing left to do changes nothing
        Run again = train(Gpt.init(CFG, 3), LORA, train, dev, o, new Finetuner.Checkpoints(11, 0, 3, five), five);
        assertSame(eleven, again);
    }

    /**
     * The best model is part of a checkpoint: resumed from step 4, the output directory holds the best model of steps
     * 1-4 again, not the later one the resume abandons (here nothing is redone: --max-steps 4).
     */
    @Test
    void aResumeRestoresTheBestModelOfItsCheckpoint() throws Exception {
        TaskData train = data(Task.TOKEN_CLASSIFICATION, 40, 1), dev = data(Task.TOKEN_CLASSIFICATION, 12, 2);
        Finetuner.Options o = options(LrSchedule.Kind.LINEAR, 0.2f);
        Path out = tmp.resolve("run"), adapter = out.resolve("adapter_model.safetensors");
        Run whole = train(Gpt.init(CFG, 3), LORA, train, dev, o, new Finetuner.Checkpoints(0, 4, 0, null), out);
        Path ck = TrainCheckpoint.dirFor(out, 4);
        int bestThen = TrainCheckpoint.state(ck).path("finetune").path("bestStep").asInt();
        assertTrue(bestThen > 0 && bestThen <= 4 && whole.result().bestStep() > 4, bestThen + " then, " + whole.result().bestStep() + " at the end");
        byte[] later = Files.readAllBytes(adapter), then = Files.readAllBytes(ck.resolve("best/adapter_model.safetensors"));
        assertFalse(Arrays.equals(later, then));
        Run back = train(Gpt.init(CFG, 3), LORA, train, dev, o, new Finetuner.Checkpoints(4, 0, 0, ck), out);
        assertEquals(bestThen, back.result().bestStep());
        assertArrayEquals(then, Files.readAllBytes(adapter));
    }

    @Test
    void anotherRunsCheckpointIsRefusedByTheOptionThatDiffers() {
        TaskData train = data(Task.TOKEN_CLASSIFICATION, 40, 1);
        Finetuner.Options o = options(LrSchedule.Kind.LINEAR, 0.2f);
        Path run = tmp.resolve("run");
        train(Gpt.init(CFG, 3), LORA, train, null, o, new Finetuner.Checkpoints(0, 0, 3, null), run);
        var ck = new Finetuner.Checkpoints(0, 0, 3, run);
        String method = assertThrows(WaferException.class,
                () -> train(Gpt.init(CFG, 3), Peft.Spec.of(Peft.Kind.FULL), train, null, o, ck, tmp.resolve("a"))).getMessage();
        assertTrue(method.contains("--method differs") && method.contains("it had lora (r 4") && method.contains("this run has full"), method);
        String base = assertThrows(WaferException.class, () -> train(Gpt.init(CFG, 4), LORA, train, null, o, ck, tmp.resolve("b"))).getMessage();
        assertTrue(base.contains("--model differs"), base);
        String data = assertThrows(WaferException.class,
                () -> train(Gpt.init(CFG, 3), LORA, data(Task.TOKEN_CLASSIFICATION, 40, 5), null, o, ck, tmp.resolve("c"))).getMessage();
        assertTrue(data.contains("--train differs"), data);
        var d = Finetuner.Options.defaults(Peft.Kind.LORA);
        var batch = new Finetuner.Options(3, 4, 2, 5e-3f, d.schedule(), 0.2f, d.minLrRatio(), d.hyper(), d.gradClip(), d.maxLength(),
                2, 0, d.seed(), false, d.padding());
        String shape = assertThrows(WaferException.class, () -> train(Gpt.init(CFG, 3), LORA, train, null, batch, ck, tmp.resolve("e"))).getMessage();
        assertTrue(shape.contains("--batch-size differs") && shape.contains("it had 8, this run has 4"), shape);
        // a pretraining checkpoint is not a fine-tuning one
        String pre = assertThrows(WaferException.class, () -> train(Gpt.init(CFG, 3), LORA, train, null, o,
                new Finetuner.Checkpoints(0, 0, 3, tmp.resolve("nothing")), tmp.resolve("f"))).getMessage();
        assertTrue(pre.contains("not a training checkpoint"), pre);
    }
}
