package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.TrainCheckpoint;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * The entry point for a pretraining run laid out over several ranks: builds the groups, a trainer
 * per rank, runs the steps, logs and saves from rank 0. With {@link Engine#THREADS} the ranks are
 * threads of this JVM; with {@link Engine#MPI} this process is one rank of an {@code mpirun} job.
 */
public final class ParallelPretrain {
    private ParallelPretrain() {}

    public enum Engine { THREADS, MPI }

    /**
     * What to train. {@code model} is called once per rank and must give the same initial model
     * every time (e.g. {@code () -> Checkpoint.load(init)} or {@code () -> Gpt.init(cfg, seed)});
     * {@code opt.batchSize()} is the global batch. {@code runDir} may be null (no checkpoints);
     * {@code saveEvery} 0 saves only at the end; {@code resume} is a checkpoint (from any layout) or null.
     */
    public record Setup(Supplier<Gpt> model, List<Path> trainShards, boolean shuffle, long seed,
                        Pretrainer.Options opt, boolean zero1, Path runDir, int saveEvery, Path resume,
                        PrintStream log, int logEvery, Duration timeout) {
        public Setup {
            if (timeout == null) timeout = ThreadCommunicator.DEFAULT_TIMEOUT;
        }
    }

    /** Rank 0's view of the run: every step, the bytes it sent per step, and the last checkpoint (or null). */
    public record Result(List<Pretrainer.StepResult> steps, long bytesPerStep, Path lastCheckpoint) {}

    public static Result run(Layout layout, Engine engine, Setup s) {
        return switch (engine) {
            case THREADS -> ThreadCommunicator.run(layout.size(), s.timeout(), c -> onRank(layout, c, s)).get(0);
            case MPI -> {
                try (Communicator world = MpiCommunicator.world()) {
                    yield onRank(layout, world, s);
                }
            }
        };
    }

    /** One rank's part of the run. */
    static Result onRank(Layout layout, Communicator world, Setup s) {
        Layout.Groups g = layout.groups(world);
        boolean lead = world.rank() == 0;
        Pretrainer.Options o = s.opt();
        Gpt model = s.model().get();
        List<Pretrainer.StepResult> steps = new ArrayList<>();
        Path last = null;
        long bytes = 0;
        try (TokenLoader loader = new TokenLoader(s.trainShards(), o.batchSize(), o.seqLen(), s.shuffle(), s.seed())) {
            if (layout.tp() > 1 || layout.pp() > 1) return sharded(layout, g, model, loader, s, lead);
            DataParallelTrainer t = new DataParallelTrainer(g.dp(), model, loader, o, s.zero1(), DataParallelTrainer.DEFAULT_BUCKET_BYTES);
            if (s.resume() != null) t.resume(TrainCheckpoint.resolve(s.resume()));
            if (lead && s.log() != null)
                s.log().printf("parallel %s: %d ranks, %d rows per rank, ZeRO-1 %s%n", layout, world.size(),
                        o.batchSize() / layout.dp(), t.zero() ? "on" : "off");
            while (t.step() < o.steps()) {
                Pretrainer.StepResult r = t.trainStep();
                steps.add(r);
                bytes = t.lastStepBytes();
                if (lead) logStep(s, r, bytes);
                if (s.runDir() != null && (r.step() == o.steps() || s.saveEvery() > 0 && r.step() % s.saveEvery() == 0))
                    last = t.save(s.runDir());
            }
        }
        return new Result(steps, bytes, last);
    }

    /** A tensor- and/or pipeline-parallel run; its checkpoints are the one-rank form, like the dp=N ones. */
    private static Result sharded(Layout layout, Layout.Groups g, Gpt model, TokenLoader loader, Setup s, boolean lead) {
        Pretrainer.Options o = s.opt();
        ParallelTrainer t = new ParallelTrainer(layout, g, model, loader, o, s.zero1(), DataParallelTrainer.DEFAULT_BUCKET_BYTES);
        if (s.resume() != null) t.resume(TrainCheckpoint.resolve(s.resume()));
        if (lead && s.log() != null) {
            s.log().printf("parallel %s: %d ranks, %d rows per replica per micro-batch, %d micro-batch(es), ZeRO-1 %s%n", layout,
                    layout.size(), o.batchSize() / layout.dp(), o.gradAccum(), t.zero() ? "on" : "off");
            if (layout.pp() > 1) s.log().printf("pipeline bubble (1F1B): %.1f%% of each step idle%n", 100 * t.bubbleFraction());
        }
        List<Pretrainer.StepResult> steps = new ArrayList<>();
        Path last = null;
        long bytes = 0;
        while (t.step() < o.steps()) {
            Pretrainer.StepResult r = t.trainStep();
            steps.add(r);
            bytes = t.lastStepBytes();
            if (lead) logStep(s, r, bytes);
            if (s.runDir() != null && (r.step() == o.steps() || s.saveEvery() > 0 && r.step() % s.saveEvery() == 0))
                last = t.save(s.runDir());
        }
        return new Result(steps, bytes, last);
    }

    private static void logStep(Setup s, Pretrainer.StepResult r, long bytes) {
        int steps = s.opt().steps();
        if (s.log() != null && s.logEvery() > 0 && (r.step() % s.logEvery() == 0 || r.step() == 1 || r.step() == steps))
            s.log().printf("step %5d/%d | loss %.6f | lr %.3e | norm %.4f | %.0f tok/s | %.1f ms | %s sent/rank%n",
                    r.step(), steps, r.loss(), r.lr(), r.gradNorm(), r.tokensPerSecond(), r.seconds() * 1e3, human(bytes));
    }

    static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        if (bytes < 1L << 20) return String.format("%.1f KiB", bytes / 1024.0);
        if (bytes < 1L << 30) return String.format("%.1f MiB", bytes / 1048576.0);
        return String.format("%.2f GiB", bytes / 1073741824.0);
    }
}
