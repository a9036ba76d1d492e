package ai.wafer.train;

import ai.wafer.WaferException;

/**
 * What pretraining and fine-tuning check alike: the hyperparameter ranges, when their options are made (before
 * any step runs), each error naming the command-line option; and every step's loss and gradient norm. A NaN or an
 * out-of-range value would otherwise train to the end and write NaN weights.
 */
public final class TrainingChecks {
    private TrainingChecks() {}

    public static void check(float lr, AdamW.Hyper h, float gradClip) {
        require(lr >= 0 && Float.isFinite(lr), "--lr", lr, "a finite number >= 0");
        require(h.beta1() >= 0 && h.beta1() < 1, "--beta1", h.beta1(), "in [0, 1)");
        require(h.beta2() >= 0 && h.beta2() < 1, "--beta2", h.beta2(), "in [0, 1)");
        require(h.eps() > 0 && Float.isFinite(h.eps()), "--eps", h.eps(), "a finite number > 0");
        require(h.weightDecay() >= 0 && Float.isFinite(h.weightDecay()), "--weight-decay", h.weightDecay(), "a finite number >= 0");
        require(gradClip >= 0 && Float.isFinite(gradClip), "--grad-clip", gradClip, "a finite number >= 0 (0 = off)");
    }

    /** A ratio (warmup or final learning-rate fraction) in [0, 1]. */
    public static void ratio(float r, String option) { require(r >= 0 && r <= 1, option, r, "in [0, 1]"); }

    /**
     * Stops the run at a step whose loss or gradient norm is not finite, before anything of that step is saved;
     * {@code kept} says which saved state is the last finite one.
     */
    public static void requireFinite(int step, double loss, double gradNorm, String kept) {
        if (Double.isFinite(loss) && Double.isFinite(gradNorm)) return;
        throw new WaferException("step " + step + ": the loss is " + loss + " and the gradient norm " + gradNorm
                + ": training stopped (a lower --lr, or check the starting weights); " + kept);
    }

    public static void require(boolean ok, String option, Object value, String range) {
        if (!ok) throw new WaferException(option + " must be " + range + ", got " + value);
    }
}
