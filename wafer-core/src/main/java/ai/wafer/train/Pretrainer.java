package ai.wafer.train;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.track.MetricsLog;
import ai.wafer.track.TensorBoardWriter;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The pretraining loop, as nanoGPT writes it: for each step, K micro-batches of forward and
 * backward (gradients accumulate; the loss is the mean over all their tokens), then one clipped
 * AdamW step at the scheduled learning rate. Around it: evaluation on held-out data, metrics
 * (metrics.jsonl and TensorBoard), checkpoints that resume exactly, and a clean stop.
 *
 * <p>{@link #run(StepEngine, TokenLoader, Reporting, PrintStream, Control)} is the one loop, for one process
 * and every parallel layout: it drives a {@link StepEngine}, of which this class's own single-process step
 * is one and each rank of a parallel run has another.
 */
public final class Pretrainer implements StepEngine {
    /** Shape of the optimisation. */
    public record Options(int steps, int batchSize, int seqLen, int gradAccum, LrSchedule schedule,
                          AdamW.Hyper hyper, float gradClip) {
        public Options {
            TrainingChecks.require(batchSize >= 1, "--batch-size", batchSize, ">= 1");
            TrainingChecks.require(seqLen >= 1, "--seq-len", seqLen, ">= 1");
            TrainingChecks.require(gradAccum >= 1, "--grad-accum", gradAccum, ">= 1");
            TrainingChecks.check(schedule.peak(), hyper, gradClip);
        }
    }

    /**
     * Where and how often to report: evalEvery/saveEvery 0 = never (the last step is still evaluated and saved as a
     * checkpoint); no file without runDir.
     */
    public record Reporting(Path runDir, int evalEvery, int evalBatches, int saveEvery, int logEvery, boolean progressBar, int keepCheckpoints) {
        /** Keeping the newest {@link #KEEP} checkpoints. */
        public Reporting(Path runDir, int evalEvery, int evalBatches, int saveEvery, int logEvery, boolean progressBar) {
            this(runDir, evalEvery, evalBatches, saveEvery, logEvery, progressBar, KEEP);
        }

        public static final int KEEP = 3;

        public Reporting {
            if (keepCheckpoints < 0) throw new ai.wafer.WaferException("--keep-checkpoints must be 0 (keep all) or more, got " + keepCheckpoints);
        }

        public static Reporting none() { return new Reporting(null, 0, 0, 0, 0, false); }
    }

    /** What one optimiser step did. */
    public record StepResult(int step, float loss, float lr, double gradNorm, double seconds, long tokens) {
        public double tokensPerSecond() { return tokens / seconds; }
    }

    /** What a run of the loop did: its steps, the last held-out loss (NaN without eval data), its last checkpoint. */
    public record Outcome(List<StepResult> steps, double evalLoss, Path lastCheckpoint, boolean stopped) {}

    /**
     * Steering a run from outside, shared by the ranks of one process: a stop request (the loop saves a
     * checkpoint and ends after the current step) and a call after every step.
     */
    public static final class Control {
        private volatile boolean stop;
        private volatile Consumer<StepResult> afterStep = r -> { };

        /** Something to undo when the run is over. */
        public interface Hook extends AutoCloseable { @Override void close(); }

        /** Asks the loop to stop after the current step. Safe from any thread. */
        public void requestStop() { stop = true; }

        public boolean stopRequested() { return stop; }

        /** Called on every rank after each step, once its logs and checkpoints are written. */
        public Control afterStep(Consumer<StepResult> c) {
            afterStep = c;
            return this;
        }

        /**
         * Until the returned handle is closed, Ctrl-C (SIGINT) or SIGTERM asks the loop to stop and holds the
         * process until the checkpoint is saved. Close it when the run is over.
         */
        public Hook stopOnSignal() {
            CountDownLatch done = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                requestStop();
                try { done.await(); } catch (InterruptedException ignored) { }
            });
            Runtime.getRuntime().addShutdownHook(hook);
            return () -> {
                done.countDown();
                try { Runtime.getRuntime().removeShutdownHook(hook); } catch (IllegalStateException ignored) { } // already shutting down
            };
        }
    }

    /**
     * The step budget: {@code steps} if given, else {@code tokensPerParam} tokens per parameter (Chinchilla's
     * rule; Cerebras-GPT: 20) at {@code tokensPerStep} tokens a step, rounded up.
     */
    public static int stepBudget(Integer steps, Double tokensPerParam, long parameters, long tokensPerStep) {
        int n;
        if (steps != null) n = steps;
        else if (tokensPerParam != null) n = (int) Math.ceil(tokensPerParam * parameters / tokensPerStep);
        else throw new ai.wafer.WaferException("give --steps or --tokens-per-param");
        if (n < 1) throw new ai.wafer.WaferException("--steps must be at least 1");
        return n;
    }

    /**
     * The model a run starts from: the checkpoint {@code init}, or a random model of the {@code preset}'s shape (with
     * nLayer/nEmbd/nHead overriding it when not null; initialised from {@code seed}), or, with neither, the shape of
     * the checkpoint being resumed (its weights come when it is loaded; a differing shape is refused there).
     * {@code mup} (null: none) gives the preset's model µP for its width: its init, learning-rate multiples and
     * scales ({@link ai.wafer.model.MuP}); a checkpoint carries its own.
     */
    public static Gpt startingModel(Path init, String preset, Integer nLayer, Integer nEmbd, Integer nHead,
                                    java.util.function.IntFunction<ai.wafer.model.MuP> mup, long seed, Path resume) {
        boolean shape = nLayer != null || nEmbd != null || nHead != null;
        if (init != null && preset != null) throw new ai.wafer.WaferException("give --init or --preset, not both");
        if ((shape || mup != null) && preset == null) throw new ai.wafer.WaferException("--n-layer/--n-embd/--n-head/--mup go with --preset");
        if (init != null) return ai.wafer.io.Checkpoint.load(init);
        if (preset != null) {
            GptConfig c = GptConfig.preset(preset);
            if (shape) c = c.withShape(nLayer != null ? nLayer : c.nLayer(), nEmbd != null ? nEmbd : c.nEmbd(),
                    nHead != null ? nHead : c.nHead(), c.vocabSize(), c.nPositions());
            if (mup != null) c = c.withMup(mup.apply(c.nEmbd()));
            c.requireHeap("--preset " + preset);
            return Gpt.init(c, seed);
        }
        if (resume != null) return new Gpt(TrainCheckpoint.config(TrainCheckpoint.resolve(resume)));
        throw new ai.wafer.WaferException("give --init DIR, --preset NAME, or --resume DIR");
    }

    private final Gpt model;
    private final TokenLoader data;
    private final Options opt;
    private final AdamW adamw;
    private final int[] x, y;
    private int step;

    public Pretrainer(Gpt model, TokenLoader data, Options opt) {
        this.model = model;
        this.data = data;
        this.opt = opt;
        FlatStore.of(model.parameters()); // the parameters become slices of one buffer, as on every layout
        this.adamw = new AdamW(model.parameters(), opt.hyper());
        this.x = new int[opt.batchSize() * opt.seqLen()];
        this.y = new int[opt.batchSize() * opt.seqLen()];
    }

    public AdamW optimizer() { return adamw; }
    @Override public Options options() { return opt; }
    @Override public int step() { return step; }
    public Gpt model() { return model; }

    /** Continues from a checkpoint: parameters, moments, step and data position. */
    @Override public void resume(Path checkpoint) {
        TrainCheckpoint.State st = TrainCheckpoint.load(checkpoint, model, adamw).requireShape(checkpoint, opt);
        data.restore(st.data());
        step = st.step();
    }

    @Override public Path save(Path runDir) {
        return TrainCheckpoint.save(runDir, model, adamw, new TrainCheckpoint.State(step, data.state(), opt));
    }

    @Override public double evalLoss(TokenLoader eval, int batches) { return LmEval.fixed(model, eval, batches).loss(); }

    /** One optimiser step over {@code gradAccum} micro-batches. */
    @Override public StepResult trainStep() {
        long t0 = System.nanoTime();
        int B = opt.batchSize(), T = opt.seqLen(), K = opt.gradAccum();
        model.zeroGrad();
        double loss = 0;
        for (int k = 0; k < K; k++) {
            data.nextBatch(x, y);
            loss += model.forward(x, y, B, T);
            model.backward(1f / ((float) K * B * T));
        }
        float lr = opt.schedule().at(step);
        double norm = adamw.step(lr, opt.gradClip());
        step++;
        return new StepResult(step, (float) (loss / K), lr, norm, (System.nanoTime() - t0) / 1e9, (long) K * B * T);
    }

    /**
     * The loop: runs the engine's remaining steps with evaluation, tracking and checkpoints as {@code rep}
     * says, until the last step or a stop request (then it saves a checkpoint first). Every rank of a
     * parallel run calls it with its own engine; only the writing rank writes files and {@code log} lines.
     */
    /** Saves a checkpoint of {@code e} under the run directory (every rank calls it), then keeps the newest rep.keepCheckpoints(). */
    public static Path checkpoint(StepEngine e, Reporting rep) {
        Path dir = e.save(rep.runDir());
        if (e.writes()) TrainCheckpoint.prune(rep.runDir(), rep.keepCheckpoints());
        return dir;
    }

    public static Outcome run(StepEngine e, TokenLoader eval, Reporting rep, PrintStream log, Control control) {
        Options opt = e.options();
        boolean writes = e.writes();
        Path runDir = rep.runDir();
        MetricsLog metrics = null;
        TensorBoardWriter tb = null;
        if (runDir != null && writes) {
            metrics = MetricsLog.openForResume(runDir, e.step());
            tb = TensorBoardWriter.create(runDir);
            if (e.step() > 0) tb.resumedAt(e.step());
        }
        if (!writes) log = null;
        List<StepResult> steps = new ArrayList<>();
        Path checkpoint = null;
        boolean stopped = false;
        double evalLoss = Double.NaN;
        long started = System.nanoTime();
        // a bar for a person at a terminal; in a log file, a plain line every 5% of the run instead
        boolean useBar = writes && rep.progressBar() && ai.wafer.track.Terminal.interactive();
        int logEvery = rep.logEvery() > 0 ? rep.logEvery() : rep.progressBar() && !useBar ? Math.max(1, opt.steps() / 20) : 0;
        ProgressBar bar = useBar ? new ProgressBarBuilder().setTaskName("pretrain").setInitialMax(opt.steps())
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500).showSpeed().setUnit(" steps", 1)
                .startsFrom(e.step(), Duration.ZERO).build() : null;
        try {
            while (e.step() < opt.steps()) {
                if (e.anyStop(control.stopRequested())) {
                    stopped = true;
                    break;
                }
                StepResult r = e.trainStep();
                TrainingChecks.requireFinite(r.step(), r.loss(), r.gradNorm(), checkpoint != null
                        ? "the last checkpoint, " + checkpoint + ", holds the last finite state" : "no checkpoint of this run was written");
                steps.add(r);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("step", r.step());
                row.put("loss", r.loss());
                row.put("lr", r.lr());
                row.put("grad_norm", r.gradNorm());
                row.put("tokens_per_s", r.tokensPerSecond());
                boolean last = r.step() == opt.steps();
                if (eval != null && (last || rep.evalEvery() > 0 && r.step() % rep.evalEvery() == 0)) {
                    evalLoss = e.evalLoss(eval, rep.evalBatches());
                    row.put("eval_loss", evalLoss);
                }
                row.put("elapsed_s", (System.nanoTime() - started) / 1e9);
                if (metrics != null) metrics.log(row);
                if (tb != null) {
                    Map<String, Number> scalars = new LinkedHashMap<>();
                    for (var en : row.entrySet()) if (!en.getKey().equals("step")) scalars.put(en.getKey(), (Number) en.getValue());
                    tb.scalars(r.step(), scalars);
                }
                if (bar != null) {
                    bar.stepTo(r.step());
                    bar.setExtraMessage(String.format(" loss %.3f%s | %.0f tok/s", r.loss(),
                            Double.isNaN(evalLoss) ? "" : String.format(" eval %.3f", evalLoss), r.tokensPerSecond()));
                }
                long bytes = e.lastStepBytes();
                if (log != null && logEvery > 0 && (r.step() % logEvery == 0 || r.step() == 1 || last))
                    log.printf("step %5d/%d | loss %.6f%s | lr %.3e | norm %.4f | %.0f tok/s | %.1f ms%s%n", r.step(), opt.steps(),
                            r.loss(), row.containsKey("eval_loss") ? String.format(" | eval %.4f", evalLoss) : "",
                            r.lr(), r.gradNorm(), r.tokensPerSecond(), r.seconds() * 1e3,
                            bytes < 0 ? "" : " | " + humanBytes(bytes) + " sent/rank");
                // the last step is always a checkpoint (as Hugging Face's Trainer): a finished run resumes, and continues with more --steps
                if (runDir != null && (last || rep.saveEvery() > 0 && r.step() % rep.saveEvery() == 0)) checkpoint = checkpoint(e, rep);
                control.afterStep.accept(r);
            }
            if (stopped && runDir != null) {
                checkpoint = checkpoint(e, rep);
                if (log != null) log.println("stopped at step " + e.step() + "; resume with --resume " + checkpoint);
            }
        } finally {
            if (bar != null) bar.close();
            if (metrics != null) metrics.close();
            if (tb != null) tb.close();
        }
        return new Outcome(steps, evalLoss, checkpoint, stopped);
    }

    /** 1536 -> "1.5 KiB": the traffic figure on a parallel run's log line. */
    public static String humanBytes(long bytes) {
        if (bytes < 1024) return bytes + " B";
        if (bytes < 1L << 20) return String.format("%.1f KiB", bytes / 1024.0);
        if (bytes < 1L << 30) return String.format("%.1f MiB", bytes / 1048576.0);
        return String.format("%.2f GiB", bytes / 1073741824.0);
    }
}
