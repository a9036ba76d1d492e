package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.StepEngine;
import ai.wafer.train.TrainCheckpoint;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The launcher of a pretraining run laid out over several ranks: builds the groups and, per rank, the
 * engine ({@link DataParallelTrainer} or {@link ParallelTrainer}), and runs {@link Pretrainer}'s one loop
 * on it, which logs and writes from rank 0. With {@link Engine#THREADS} the ranks are threads of this
 * JVM; with {@link Engine#MPI} this process is one rank of an {@code mpirun} job.
 */
public final class ParallelPretrain {
    private ParallelPretrain() {}

    public enum Engine {
        THREADS, MPI;

        public static Engine of(boolean mpi) { return mpi ? MPI : THREADS; }

        /**
         * {@code body} on n ranks: threads of this JVM (rank 0's result), or this process as one rank of the mpirun job.
         * A rank that waits longer than {@code timeout} in one exchange ends the run (under MPI, its process) with an error.
         */
        <R> R run(int n, Duration timeout, Function<Communicator, R> body) {
            if (this == THREADS) return ThreadCommunicator.run(n, timeout, body).get(0);
            // no MPI_Finalize after a failure: it waits for every rank, while the process's exit makes mpirun end the job
            MpiCommunicator world = MpiCommunicator.world(timeout);
            R r = body.apply(world);
            world.close();
            return r;
        }
    }

    /**
     * What to train. {@code model} is called once per rank and must give the same initial model
     * every time (e.g. {@code () -> Checkpoint.load(init)} or {@code () -> Gpt.init(cfg, seed)});
     * {@code opt.batchSize()} is the global batch. {@code evalShards} may be empty (no evaluation);
     * {@code rep.runDir()} may be null (no files); a finished run always saves a last checkpoint there;
     * {@code resume} is a checkpoint (from any layout) or null. {@code control} stops the run (thread
     * ranks share it; MPI ranks each have one and agree on the step).
     */
    public record Setup(Supplier<Gpt> model, List<Path> trainShards, List<Path> evalShards, boolean shuffle, long seed,
                        Pretrainer.Options opt, boolean zero1, Path resume, Pretrainer.Reporting rep, PrintStream log,
                        Pretrainer.Control control, Duration timeout) {
        public Setup {
            if (evalShards == null) evalShards = List.of();
            if (control == null) control = new Pretrainer.Control();
            if (timeout == null) timeout = ThreadCommunicator.DEFAULT_TIMEOUT;
        }
    }

    /**
     * A rank's view of the run: its steps, the bytes it sent per step, the last held-out loss, the last checkpoint (or
     * null), and whether this rank is the one that writes (world rank 0: under MPI every process gets a Result).
     */
    public record Result(List<Pretrainer.StepResult> steps, long bytesPerStep, double evalLoss, Path lastCheckpoint, boolean stopped,
                         boolean writes) {}

    /** --comm-timeout SECONDS as a Duration (positive and finite, or refused). */
    public static Duration timeout(double seconds) {
        if (!(seconds > 0 && seconds <= 1e9)) throw new WaferException("--comm-timeout must be a positive number of seconds (got " + seconds + ")");
        return Duration.ofNanos((long) (seconds * 1e9));
    }

    /**
     * With {@code --mpi}, the shape of the model in the checkpoint {@code resume} names: rank 0 reads it (the run
     * directory may be on its disk only) and sends its config.json to the others, one UTF-8 byte per double.
     */
    public static GptConfig resumedShape(Path resume, Duration timeout) {
        Communicator c = MpiCommunicator.world(timeout);
        byte[] json = c.rank() == 0 ? TrainCheckpoint.config(TrainCheckpoint.resolve(resume)).toJson().toString()
                .getBytes(StandardCharsets.UTF_8) : new byte[0];
        double[] n = {json.length};
        c.allReduceSum(n, 0, 1);
        double[] b = new double[(int) n[0]];
        for (int i = 0; i < json.length; i++) b[i] = json[i];
        c.allReduceSum(b, 0, b.length); // rank 0's bytes plus zeros
        byte[] got = new byte[b.length];
        for (int i = 0; i < b.length; i++) got[i] = (byte) b[i];
        try {
            return GptConfig.fromJson(new ObjectMapper().readTree(got), resume.resolve("config.json").toString());
        } catch (IOException e) {
            throw new WaferException("config of " + resume + " from rank 0: " + e.getMessage());
        }
    }

    public static Result run(Layout layout, Engine engine, Setup s) {
        return engine.run(layout.size(), s.timeout(), c -> onRank(layout, c, s));
    }

    /** One rank's part of the run. */
    static Result onRank(Layout layout, Communicator world, Setup s) {
        Layout.Groups g = layout.groups(world);
        Pretrainer.Options o = s.opt();
        PrintStream log = world.rank() == 0 ? s.log() : null;
        try (TokenLoader loader = new TokenLoader(s.trainShards(), o.batchSize(), o.seqLen(), s.shuffle(), s.seed());
             TokenLoader eval = s.evalShards().isEmpty() ? null : new TokenLoader(s.evalShards(), o.batchSize(), o.seqLen(), false, s.seed())) {
            StepEngine t;
            if (layout.tp() > 1 || layout.pp() > 1) {
                ParallelTrainer pt = new ParallelTrainer(layout, g, s.model().get(), loader, o, s.zero1(), DataParallelTrainer.DEFAULT_BUCKET_BYTES);
                if (log != null) {
                    log.printf("parallel %s: %d ranks, %d rows per replica per micro-batch, %d micro-batch(es), ZeRO-1 %s%n", layout,
                            layout.size(), o.batchSize() / layout.dp(), o.gradAccum(), pt.zero() ? "on" : "off");
                    if (layout.pp() > 1) log.printf("pipeline bubble (1F1B): %.1f%% of each step idle%n", 100 * pt.bubbleFraction());
                }
                t = pt;
            } else {
                DataParallelTrainer dt = new DataParallelTrainer(g.dp(), s.model().get(), loader, o, s.zero1(), DataParallelTrainer.DEFAULT_BUCKET_BYTES);
                if (log != null) log.printf("parallel %s: %d ranks, %d rows per rank, ZeRO-1 %s%n", layout, world.size(),
                        o.batchSize() / layout.dp(), dt.zero() ? "on" : "off");
                t = dt;
            }
            // rank 0 alone reads what it alone wrote (the run directory may be on its disk only): it picks the checkpoint
            if (s.resume() != null) t.resume(world.rank() == 0 ? TrainCheckpoint.resolve(s.resume()) : s.resume());
            Pretrainer.Outcome out = Pretrainer.run(t, eval, s.rep(), log, s.control());
            // the whole model exists only across the ranks: the loop's last checkpoint (one-rank form) holds it
            return new Result(out.steps(), t.lastStepBytes(), out.evalLoss(), out.lastCheckpoint(), out.stopped(), t.writes());
        }
    }
}
