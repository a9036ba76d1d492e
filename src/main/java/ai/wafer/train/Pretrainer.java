package ai.wafer.train;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;

import java.io.PrintStream;
import java.util.function.IntConsumer;

/**
 * The pretraining loop, as nanoGPT writes it: for each step, K micro-batches of forward and
 * backward (gradients accumulate; the loss is the mean over all their tokens), then one clipped
 * AdamW step at the scheduled learning rate.
 */
public final class Pretrainer {
    /** Everything the loop needs besides the model and the data. */
    public record Options(int steps, int batchSize, int seqLen, int gradAccum, LrSchedule schedule,
                          AdamW.Hyper hyper, float gradClip) {}

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

    /** Runs the remaining steps, printing one line per step (or every {@code every} steps). */
    public void run(PrintStream log, int every, IntConsumer afterStep) {
        while (step < opt.steps()) {
            StepResult r = trainStep();
            if (log != null && (r.step() % every == 0 || r.step() == 1 || r.step() == opt.steps()))
                log.printf("step %5d/%d | loss %.6f | lr %.3e | norm %.4f | %.0f tok/s | %.1f ms%n", r.step(), opt.steps(),
                        r.loss(), r.lr(), r.gradNorm(), r.tokensPerSecond(), r.seconds() * 1e3);
            if (afterStep != null) afterStep.accept(r.step());
        }
    }
}
