package ai.wafer.parallel;

import ai.wafer.tensor.Activation;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.finetune.Finetuner;
import ai.wafer.model.Task;
import ai.wafer.finetune.TaskData;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import ai.wafer.track.MetricsLog;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static ai.wafer.parallel.ParallelFixtures.Run;
import static ai.wafer.parallel.ParallelFixtures.assertSameRun;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** dp=N fine-tuning on thread ranks reproduces the one-process run on the same global batches, and sends only trainable gradients. */
class DataParallelFinetuneTest {
    @TempDir Path tmp;

    static final GptConfig CFG = new GptConfig(31, 16, 32, 2, 2, 128, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
    /** LoRA without dropout, on two targets. */
    static final Peft.Spec LORA = new Peft.Spec(Peft.Kind.LORA, new Lora.Config(4, 8, 0f, List.of("c_attn", "c_fc")), 0, 0, 0);
    /** The same with dropout: each rank draws, for its rows, the mask the one process draws for them. */
    static final Peft.Spec LORA_DROPOUT = new Peft.Spec(Peft.Kind.LORA, new Lora.Config(4, 8, 0.3f, List.of("c_attn", "c_fc")), 0, 0, 0);

    /** Tag = token id mod 3; lengths 3..10, so batches are padded and the last batch of an epoch is short. */
    static TaskData toy(int n, long seed) { return ai.wafer.testutil.ToyTasks.tagging(n, seed, 10); }

    static FinetuneModel model(Peft.Spec spec, TaskData train) {
        return FinetuneModel.create(Gpt.init(CFG, 3), Task.TOKEN_CLASSIFICATION, train.labels(), spec, 30, 4);
    }

    static Finetuner.Options options(int batch, int accum, int epochs, float lr) {
        var d = Finetuner.Options.defaults(Peft.Kind.LORA);
        return new Finetuner.Options(epochs, batch, accum, lr, d.schedule(), d.warmupRatio(), d.minLrRatio(), d.hyper(), d.gradClip(),
                d.maxLength(), 0, 0, d.seed(), false, d.padding());
    }

    /** Loss and gradient norm of every step (from metrics.jsonl) and the trainable tensors at the end. */
    static Run outcome(Path out, FinetuneModel fm) {
        List<Float> losses = new ArrayList<>();
        List<Double> norms = new ArrayList<>();
        for (Map<String, Object> row : MetricsLog.read(out)) {
            losses.add(((Number) row.get("loss")).floatValue());
            norms.add(((Number) row.get("grad_norm")).doubleValue());
        }
        List<float[]> params = new ArrayList<>();
        for (Parameter p : fm.parameters()) if (p.trainable()) params.add(p.array().clone());
        return new Run(losses, norms, params);
    }

    static long trainable(FinetuneModel fm) {
        long n = 0;
        for (Parameter p : fm.parameters()) if (p.trainable()) n += p.size();
        return n;
    }

    record Ranks(Run rank0, List<DataParallelFinetune.Result> all) {}

    /** p thread ranks; every replica must end bit-identical to rank 0. */
    Ranks parallel(int p, Peft.Spec spec, TaskData train, TaskData dev, Finetuner.Options o, String name) {
        return parallel(p, spec, train, dev, o, Finetuner.Checkpoints.NONE, name);
    }

    Ranks parallel(int p, Peft.Spec spec, TaskData train, TaskData dev, Finetuner.Options o, Finetuner.Checkpoints ck, String name) {
        Path out = tmp.resolve(name);
        var setup = new DataParallelFinetune.Setup(r -> model(spec, train), train, dev, o, out, "toy", null, Duration.ofSeconds(60), ck);
        List<DataParallelFinetune.Result> rs = ThreadCommunicator.run(p, setup.timeout(), c -> DataParallelFinetune.onRank(c, setup));
        Run first = outcome(out, rs.get(0).model());
        for (var r : rs) {
            List<float[]> mine = outcome(out, r.model()).params();
            for (int i = 0; i < mine.size(); i++) assertArrayEquals(first.params().get(i), mine.get(i), name + ": replicas differ");
            assertEquals(rs.get(0).run().steps(), r.run().steps());
        }
        return new Ranks(first, rs);
    }

    Run single(Peft.Spec spec, TaskData train, TaskData dev, Finetuner.Options o, String name) {
        FinetuneModel fm = model(spec, train);
        Path out = tmp.resolve(name);
        new Finetuner(fm, train, dev, o).run(out, "toy", null);
        return outcome(out, fm);
    }

    @Test void loraOnTwoRanksEqualsOneProcessAndSendsOnlyTheAdapterGradients() {
        TaskData train = toy(37, 1); // batches of 8: the last has 5 rows, split 2 + 3
        var o = options(8, 1, 1, 1e-2f);
        Run want = single(LORA, train, null, o, "one");
        Ranks got = parallel(2, LORA, train, null, o, "dp2");
        assertEquals(5, want.losses().size());
        assertSameRun(want, got.rank0(), "LoRA dp=2");
        // per step: the all-reduce of the trainable gradients (LoRA A and B, and the head) and of [loss, targets]
        FinetuneModel fm = got.all().get(0).model();
        long n = trainable(fm);
        assertEquals(Traffic.allReduce(4 * n, 2) + Traffic.allReduce(16, 2), got.all().get(0).bytesPerStep());
        assertEquals(4 * n + 16, got.all().get(0).bytesPerStep());
        // per layer LoRA r=4 on c_attn (32 -> 96) and c_fc (32 -> 128): 4*32 + 96*4 + 4*32 + 128*4; the head 3*32 + 3
        assertEquals(2 * (128 + 384 + 128 + 512) + 99, n);
    }

    /** Dropout masks too: rank r's rows are dropped as in the one-process run, and a rank with no rows stays in step. */
    @Test void loraDropoutMasksAreTheOneProcessMasks() {
        TaskData train = toy(34, 3); // batches of 8, the last of 2 rows: rank 0 of 3 computes nothing there
        var o = options(8, 1, 2, 1e-2f);
        Run want = single(LORA_DROPOUT, train, null, o, "one");
        assertSameRun(want, parallel(2, LORA_DROPOUT, train, null, o, "dp2").rank0(), "LoRA dropout dp=2");
        assertSameRun(want, parallel(3, LORA_DROPOUT, train, null, o, "dp3").rank0(), "LoRA dropout dp=3");
    }

    @Test void fullFineTuningOnTwoRanksWithAccumulationAndDevEvaluation() {
        TaskData train = toy(45, 1), dev = toy(12, 2); // batches of 6 (3 + 3 rows), 2 per step; one batch of 3 per epoch (1 + 2)
        var base = options(6, 2, 2, 3e-3f);
        var o = new Finetuner.Options(base.epochs(), base.batchSize(), base.gradAccum(), base.lr(), base.schedule(), base.warmupRatio(),
                base.minLrRatio(), base.hyper(), base.gradClip(), base.maxLength(), 3, 0, base.seed(), false, base.padding());
        Peft.Spec full = Peft.Spec.of(Peft.Kind.FULL);
        Run want = single(full, train, dev, o, "one");
        Ranks got = parallel(2, full, train, dev, o, "dp2");
        assertEquals(8, want.losses().size());
        assertSameRun(want, got.rank0(), "full dp=2");
        assertEquals(got.all().get(0).run().bestStep(), got.all().get(1).run().bestStep());
        long n = trainable(got.all().get(0).model());
        assertEquals(n, got.all().get(0).model().gpt.parameterCount() + 3 * 32 + 3); // every weight, and the head
        assertEquals(4 * n + 2 * 16, got.all().get(0).bytesPerStep()); // [loss, targets] of each of 2 micro-batches
    }

    @Test void threeRanksWhenARankGetsNoRowsOfTheLastBatch() {
        TaskData train = toy(34, 3); // batches of 8: the last has 2 rows, so rank 0 of 3 computes nothing there
        var o = options(8, 1, 2, 1e-2f);
        assertSameRun(single(LORA, train, null, o, "one"), parallel(3, LORA, train, null, o, "dp3").rank0(), "LoRA dp=3");
    }

    /**
     * Issue 17 item 2 with data parallelism: every rank restores the checkpoint rank 0 wrote (LoRA dropout's mask
     * streams included), so a dp=2 run resumed at step 3 is the uninterrupted dp=2 run bit for bit; the checkpoint,
     * the one-process form, also resumes on one process (to the dp run's usual tolerance).
     */
    @Test void aDataParallelRunResumesBitForBit() {
        TaskData train = toy(34, 3), dev = toy(12, 2);
        var o = options(8, 1, 2, 1e-2f); // 5 steps an epoch, 10 in all
        Ranks whole = parallel(2, LORA_DROPOUT, train, dev, o, new Finetuner.Checkpoints(0, 3, 0, null), "whole");
        Path ck = ai.wafer.train.TrainCheckpoint.dirFor(tmp.resolve("whole"), 3);
        Ranks resumed = parallel(2, LORA_DROPOUT, train, dev, o, new Finetuner.Checkpoints(0, 3, 0, ck), "resumed");
        assertEquals(10, whole.rank0().losses().size());
        assertEquals(whole.rank0().losses(), resumed.rank0().losses());
        assertEquals(whole.rank0().norms(), resumed.rank0().norms());
        for (int i = 0; i < whole.rank0().params().size(); i++)
            assertArrayEquals(whole.rank0().params().get(i), resumed.rank0().params().get(i), "trainable tensor " + i);
        FinetuneModel one = model(LORA_DROPOUT, train);
        new Finetuner(one, train, dev, o).checkpoints(new Finetuner.Checkpoints(0, 0, 0, ck)).run(tmp.resolve("one"), "toy", null);
        assertSameRun(whole.rank0(), outcome(tmp.resolve("one"), one), "dp=2 checkpoint resumed on one process");
    }
}
