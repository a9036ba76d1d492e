package ai.wafer.train;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.track.MetricsLog;
import ai.wafer.track.Plot;
import ai.wafer.track.TensorBoardWriter;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The pretraining loop, as nanoGPT writes it: for each step, K micro-batches of forward and
 * backward (gradients accumulate; the loss is the mean over all their tokens), then one clipped
 * AdamW step at the scheduled learning rate. Around it: evaluation on held-out data, metrics
 * (metrics.jsonl and TensorBoard), checkpoints that resume exactly, and a clean stop.
 */
public final class Pretrainer {
    /** Shape of the optimisation. */
    public record Options(int steps, int batchSize, int seqLen, int gradAccum, LrSchedule schedule,
                          AdamW.Hyper hyper, float gradClip) {}

    /** Where and how often to report: evalEvery/saveEvery 0 = never (a final eval and save still happen). */
    public record Reporting(Path runDir, int evalEvery, int evalBatches, int saveEvery, int logEvery, boolean progressBar) {
        public static Reporting none() { return new Reporting(null, 0, 0, 0, 0, false); }
    }

    /** What one optimiser step did. */
    public record StepResult(int step, float loss, float lr, double gradNorm, double seconds, long tokens) {
        public double tokensPerSecond() { return tokens / seconds; }
    }

    private final Gpt model;
    private final TokenLoader data;
    private final Options opt;
    private final AdamW adamw;
    private final int[] x, y;
    private int step;
    private volatile boolean stopRequested;

    public Pretrainer(Gpt model, TokenLoader data, Options opt) {
        this.model = model;
        this.data = data;
        this.opt = opt;
        this.adamw = new AdamW(model.parameters(), opt.hyper());
        this.x = new int[opt.batchSize() * opt.seqLen()];
        this.y = new int[opt.batchSize() * opt.seqLen()];
    }

    public AdamW optimizer() { return adamw; }
    public int step() { return step; }
    public Gpt model() { return model; }

    /** Asks the loop to stop after the current step (it saves a checkpoint first). Safe from any thread. */
    public void requestStop() { stopRequested = true; }

    /** Continues from a checkpoint: parameters, moments, step and data position. */
    public void resume(Path checkpoint) {
        TrainCheckpoint.State st = TrainCheckpoint.load(checkpoint, model, adamw);
        if (st.batchSize() != opt.batchSize() || st.seqLen() != opt.seqLen() || st.gradAccum() != opt.gradAccum())
            throw new ai.wafer.WaferException(checkpoint + ": saved with batch " + st.batchSize() + " x " + st.seqLen()
                    + " x " + st.gradAccum() + " accumulation; resume needs the same (got " + opt.batchSize() + " x "
                    + opt.seqLen() + " x " + opt.gradAccum() + ")");
        data.restore(st.data());
        step = st.step();
    }

    public Path saveCheckpoint(Path runDir) {
        return TrainCheckpoint.save(runDir, model, adamw,
                new TrainCheckpoint.State(step, data.state(), opt.batchSize(), opt.seqLen(), opt.gradAccum()));
    }

    /** One optimiser step over {@code gradAccum} micro-batches. */
    public StepResult trainStep() {
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
     * Runs the remaining steps with evaluation, tracking and checkpoints as {@code rep} says.
     * Returns the last held-out loss (NaN without eval data).
     */
    public double run(TokenLoader eval, Reporting rep, PrintStream log) {
        MetricsLog metrics = null;
        TensorBoardWriter tb = null;
        if (rep.runDir() != null) {
            metrics = MetricsLog.openForResume(rep.runDir(), step);
            tb = TensorBoardWriter.create(rep.runDir());
        }
        double evalLoss = Double.NaN;
        long started = System.nanoTime();
        // a bar for a person at a terminal; in a log file, a plain line every 5% of the run instead
        boolean useBar = rep.progressBar() && ai.wafer.track.Terminal.interactive();
        int logEvery = rep.logEvery() > 0 ? rep.logEvery() : rep.progressBar() && !useBar ? Math.max(1, opt.steps() / 20) : 0;
        ProgressBar bar = useBar ? new ProgressBarBuilder().setTaskName("pretrain").setInitialMax(opt.steps())
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500).showSpeed().setUnit(" steps", 1)
                .startsFrom(step, Duration.ZERO).build() : null;
        try {
            while (step < opt.steps() && !stopRequested) {
                StepResult r = trainStep();
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("step", r.step());
                row.put("loss", r.loss());
                row.put("lr", r.lr());
                row.put("grad_norm", r.gradNorm());
                row.put("tokens_per_s", r.tokensPerSecond());
                boolean last = r.step() == opt.steps();
                if (eval != null && (last || rep.evalEvery() > 0 && r.step() % rep.evalEvery() == 0)) {
                    evalLoss = LmEval.fixed(model, eval, rep.evalBatches()).loss();
                    row.put("eval_loss", evalLoss);
                }
                row.put("elapsed_s", (System.nanoTime() - started) / 1e9);
                if (metrics != null) metrics.log(row);
                if (tb != null) {
                    Map<String, Number> scalars = new LinkedHashMap<>();
                    for (var e : row.entrySet()) if (!e.getKey().equals("step")) scalars.put(e.getKey(), (Number) e.getValue());
                    tb.scalars(r.step(), scalars);
                }
                if (bar != null) {
                    bar.stepTo(r.step());
                    bar.setExtraMessage(String.format(" loss %.3f%s | %.0f tok/s", r.loss(),
                            Double.isNaN(evalLoss) ? "" : String.format(" eval %.3f", evalLoss), r.tokensPerSecond()));
                }
                if (log != null && logEvery > 0 && (r.step() % logEvery == 0 || r.step() == 1 || last))
                    log.printf("step %5d/%d | loss %.6f%s | lr %.3e | norm %.4f | %.0f tok/s | %.1f ms%n", r.step(), opt.steps(),
                            r.loss(), row.containsKey("eval_loss") ? String.format(" | eval %.4f", evalLoss) : "",
                            r.lr(), r.gradNorm(), r.tokensPerSecond(), r.seconds() * 1e3);
                if (rep.runDir() != null && rep.saveEvery() > 0 && r.step() % rep.saveEvery() == 0 && !last)
                    saveCheckpoint(rep.runDir());
                if (crashAfter > 0 && r.step() == crashAfter) Runtime.getRuntime().halt(137); // tests: a kill -9
            }
            if (stopRequested && rep.runDir() != null && step < opt.steps()) {
                Path ck = saveCheckpoint(rep.runDir());
                if (log != null) log.println("stopped at step " + step + "; resume with --resume " + ck);
            }
        } finally {
            if (bar != null) bar.close();
            if (metrics != null) metrics.close();
            if (tb != null) tb.close();
        }
        if (rep.runDir() != null) Plot.write(rep.runDir(), rep.runDir().resolve("curves.png"));
        return evalLoss;
    }

    private int crashAfter;

    /** For resume tests only: end the process abruptly (as kill -9 would) after this step. */
    public void crashAfterStep(int s) { crashAfter = s; }
}
