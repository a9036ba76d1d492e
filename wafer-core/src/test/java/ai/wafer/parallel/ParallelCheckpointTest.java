package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.TrainCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoints of tensor- and pipeline-parallel runs: one-rank form on disk, resumable on any layout. */
class ParallelCheckpointTest {
    @TempDir Path tmp;

    /**
     * {@code steps} steps on the layout (thread ranks), resumed from {@code from} if given (on a model
     * initialised differently, so the weights must come from the checkpoint), saved under {@code to} if
     * given; rank 0's run with the gathered model.
     */
    static Run onLayout(Path shard, Pretrainer.Options o, String layout, int steps, Path from, Path to) {
        return onLayout(shard, o, layout, false, steps, from, to);
    }

    /** As above; with {@code zero}, ZeRO-1 over small buckets (chunks straddle parameters) and a check that the moments are cut by dp. */
    static Run onLayout(Path shard, Pretrainer.Options o, String layout, boolean zero, int steps, Path from, Path to) {
        Layout l = Layout.parse(layout);
        List<Run> runs = ThreadCommunicator.run(l.size(), Duration.ofSeconds(60), c -> {
            try (TokenLoader loader = new TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
                ParallelTrainer t = new ParallelTrainer(l, l.groups(c), Gpt.init(CFG, from == null ? SEED : 99), loader, o,
                        zero, zero ? 4096 : DataParallelTrainer.DEFAULT_BUCKET_BYTES);
                long local = t.model().parameters().stream().mapToLong(Parameter::size).sum();
                if (zero) assertTrue(t.zero() && t.optimizerStateFloats() < 2 * local * 6 / 5 / l.dp(), t.optimizerStateFloats() + " of " + local);
                else assertEquals(2 * local, t.optimizerStateFloats());
                if (from != null) t.resume(from);
                List<Pretrainer.StepResult> rs = new ArrayList<>();
                for (int s = 0; s < steps; s++) rs.add(t.trainStep());
                if (to != null) t.save(to);
                return snapshot(rs, t.gather().parameters());
            }
        });
        for (Run r : runs) assertEquals(runs.get(0).losses(), r.losses());
        return runs.get(0);
    }

    /** The same on one process with {@link Pretrainer}. */
    static Run oneRank(Path shard, Pretrainer.Options o, int steps, Path from, Path to) {
        Gpt m = Gpt.init(CFG, from == null ? SEED : 99);
        try (TokenLoader loader = new TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
            Pretrainer p = new Pretrainer(m, loader, o);
            if (from != null) p.resume(from);
            List<Pretrainer.StepResult> rs = new ArrayList<>();
            for (int s = 0; s < steps; s++) rs.add(p.trainStep());
            if (to != null) p.save(to);
            return snapshot(rs, m.parameters());
        }
    }

    @Test void aOneRankCheckpointResumesOnTensorAndPipelineLayouts() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(4, 4, 16, 2);
        Run want = reference(shard, o, 4);
        Path run = tmp.resolve("one");
        Run first = oneRank(shard, o, 2, null, run);
        Path ck = TrainCheckpoint.resolve(run);
        for (String l : List.of("tp=2", "pp=2", "dp=2,tp=2"))
            assertSameRun(want, join(first, onLayout(shard, o, l, 2, ck, null)), "one rank, then " + l);
    }

    @Test void shardedCheckpointsAreOneRankCheckpoints() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(4, 4, 16, 2);
        Run want = reference(shard, o, 4);
        // from -> to: tensor shards, pipeline stages (the tied head copy on the last stage), and both with dp
        String[][] moves = {{"tp=2", "pp=2"}, {"pp=2", "dp=2,tp=2"}, {"dp=2,pp=2", "tp=2"}};
        for (String[] mv : moves) {
            Path run = tmp.resolve(mv[0].replace(',', '-').replace('=', '_'));
            Run first = onLayout(shard, o, mv[0], 2, null, run);
            Path ck = TrainCheckpoint.resolve(run);
            // on disk: the whole model, exactly the gathered shards, as Hugging Face files
            Gpt saved = Checkpoint.load(ck);
            for (int i = 0; i < first.params().size(); i++)
                assertArrayEquals(first.params().get(i), saved.parameters().get(i).array(), mv[0] + ": " + saved.parameters().get(i).name);
            assertSameRun(want, join(first, oneRank(shard, o, 2, ck, null)), mv[0] + ", then one rank");
            assertSameRun(want, join(first, onLayout(shard, o, mv[1], 2, ck, null)), mv[0] + ", then " + mv[1]);
        }
    }

    @Test void tensorAndPipelineTogetherSaveAndResume() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(4, 4, 16, 1);
        Run want = reference(shard, o, 4);
        Path run = tmp.resolve("tp2pp2");
        Run first = onLayout(shard, o, "tp=2,pp=2", 2, null, run);
        assertSameRun(want, join(first, onLayout(shard, o, "tp=2,pp=2", 2, TrainCheckpoint.resolve(run), null)), "tp=2,pp=2 twice");
    }

    @Test void aRestartFromTheLastCheckpointContinues() {
        Path shard = tokens(tmp, 3000);
        Path run = tmp.resolve("run");
        // a shuffled run of 4 steps that stops after step 3 (saved every step), then is started again
        LrSchedule lr = new LrSchedule(LrSchedule.Kind.COSINE, 3e-3f, 1, 4, 0.1f);
        Pretrainer.Options stopped = new Pretrainer.Options(3, 4, 16, 2, lr, AdamW.Hyper.defaults(), 1.0f);
        Pretrainer.Options whole = new Pretrainer.Options(4, 4, 16, 2, lr, AdamW.Hyper.defaults(), 1.0f);
        ParallelPretrain.Result a = ParallelPretrain.run(Layout.parse("tp=2"), ParallelPretrain.Engine.THREADS, setup(shard, stopped, run, null));
        assertEquals(TrainCheckpoint.dirFor(run, 3), a.lastCheckpoint());
        assertTrue(Files.isDirectory(TrainCheckpoint.dirFor(run, 1)) && Files.isDirectory(TrainCheckpoint.dirFor(run, 2)));
        ParallelPretrain.Result b = ParallelPretrain.run(Layout.parse("pp=2"), ParallelPretrain.Engine.THREADS, setup(shard, whole, run, run));
        assertEquals(List.of(4), b.steps().stream().map(Pretrainer.StepResult::step).toList(), "the step counter carries on");

        // the uninterrupted run on one process, the same shuffled batches
        Gpt m = Gpt.init(CFG, SEED);
        List<Pretrainer.StepResult> rs = new ArrayList<>();
        try (TokenLoader loader = new TokenLoader(List.of(shard), 4, 16, true, 5)) {
            Pretrainer p = new Pretrainer(m, loader, whole);
            for (int s = 0; s < 4; s++) rs.add(p.trainStep());
        }
        List<Pretrainer.StepResult> got = new ArrayList<>(a.steps());
        got.addAll(b.steps());
        Gpt saved = Checkpoint.load(b.lastCheckpoint());
        assertSameRun(snapshot(rs, m.parameters()), snapshot(got, saved.parameters()), "tp=2 stopped at 3, pp=2 from there");
    }

    @Test void aStopRequestSavesACheckpointThatResumesBitIdentically() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(4, 4, 16, 2);
        Path whole = tmp.resolve("whole"), run = tmp.resolve("run");
        ParallelPretrain.Result want = ParallelPretrain.run(Layout.parse("tp=2"), ParallelPretrain.Engine.THREADS, setup(shard, o, whole, null));
        // as Ctrl-C would: a stop asked for during step 2 (on one rank's thread); every rank stops after it
        Pretrainer.Control stop = new Pretrainer.Control();
        stop.afterStep(r -> { if (r.step() == 2) stop.requestStop(); });
        ParallelPretrain.Setup s = setup(shard, o, run, null);
        ParallelPretrain.Result a = ParallelPretrain.run(Layout.parse("tp=2"), ParallelPretrain.Engine.THREADS,
                new ParallelPretrain.Setup(s.model(), s.trainShards(), List.of(), s.shuffle(), s.seed(), o, false, null,
                        new Pretrainer.Reporting(run, 0, 0, 0, 0, false), null, stop, null));
        assertTrue(a.stopped());
        assertEquals(TrainCheckpoint.dirFor(run, 2), a.lastCheckpoint());
        ParallelPretrain.Result b = ParallelPretrain.run(Layout.parse("tp=2"), ParallelPretrain.Engine.THREADS, setup(shard, o, run, run));
        assertEquals(List.of(3, 4), b.steps().stream().map(Pretrainer.StepResult::step).toList());
        Gpt x = Checkpoint.load(want.lastCheckpoint()), y = Checkpoint.load(b.lastCheckpoint());
        for (int i = 0; i < x.parameters().size(); i++)
            assertArrayEquals(x.parameters().get(i).array(), y.parameters().get(i).array(), "bit-identical " + x.parameters().get(i).name);
    }

    private static ParallelPretrain.Setup setup(Path shard, Pretrainer.Options o, Path runDir, Path resume) {
        return ParallelFixtures.setup(() -> Gpt.init(CFG, SEED), List.of(shard), true, 5, o, false, runDir, 1, resume, null, 0);
    }

    @Test void zero1WithTensorAndPipelineEqualsOneProcess() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 2);
        Run want = reference(shard, o, 3);
        assertSameRun(want, onLayout(shard, o, "dp=2,tp=2", true, 3, null, null), "dp=2,tp=2 zero1");
        assertSameRun(want, onLayout(shard, o, "dp=2,pp=2", true, 3, null, null), "dp=2,pp=2 zero1");
    }

    @Test void zero1CheckpointsMoveBetweenLayouts() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(4, 4, 16, 2);
        Run want = reference(shard, o, 4);
        Path run = tmp.resolve("zero");
        Run first = onLayout(shard, o, "dp=2,tp=2", true, 2, null, run);
        Path ck = TrainCheckpoint.resolve(run);
        assertSameRun(want, join(first, oneRank(shard, o, 2, ck, null)), "dp=2,tp=2 zero1, then one rank");
        assertSameRun(want, join(first, onLayout(shard, o, "dp=2,pp=2", true, 2, ck, null)), "dp=2,tp=2 zero1, then dp=2,pp=2 zero1");
    }

    /** Rank 0 alone reads; the others receive every bit (a negative zero and a NaN included) and the state, though their path does not exist. */
    @Test void rankZeroReadsTheCheckpointAndTheOthersReceiveItExactly() {
        Gpt m = Gpt.init(CFG, SEED);
        Parameter w = m.parameters().getFirst();
        w.data[w.off] = -0f;
        w.data[w.off + 1] = Float.NaN;
        AdamW opt = new AdamW(m.parameters(), AdamW.Hyper.defaults());
        opt.setStepCount(5L << 33); // beyond a double's 53 bits once the halves are joined wrongly
        TokenLoader.State data = new TokenLoader.State(3, 1L << 40, 16, 1, Long.MIN_VALUE + 7);
        Path ck = TrainCheckpoint.save(tmp, m, opt, new TrainCheckpoint.State(9, data, 4, 16, 2));
        List<String> got = ThreadCommunicator.run(3, Duration.ofSeconds(30), c -> {
            Gpt g = Gpt.init(CFG, SEED + 1 + c.rank());
            AdamW a = new AdamW(g.parameters(), AdamW.Hyper.defaults());
            var st = DataParallelTrainer.loadOnRank0(c, c.rank() == 0 ? ck : tmp.resolve("absent"), g, a);
            for (int t = 0; t < g.parameters().size(); t++)
                for (int i = 0; i < g.parameters().get(t).size(); i++)
                    assertEquals(Float.floatToRawIntBits(m.parameters().get(t).get(i)), Float.floatToRawIntBits(g.parameters().get(t).get(i)));
            return st + " " + a.stepCount();
        });
        assertEquals(new TrainCheckpoint.State(9, data, 4, 16, 2) + " " + (5L << 33), got.get(1));
        assertEquals(got.get(0), got.get(2));
    }
}
