package ai.wafer.model;

import ai.wafer.parallel.Communicator;
import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.VecMath;

/**
 * Softmax cross-entropy over the vocabulary, fused with its backward: the logits buffer is turned
 * into probabilities in place (the forward), and later into dlogits = (p - onehot) * scale (the
 * backward). Keeping one [N,V] buffer instead of three matters: at V = 50257 it is the largest
 * activation of the model.
 */
public final class CrossEntropy {
    private CrossEntropy() {}

    /** Targets below 0 (e.g. -100) are ignored: no loss, zero gradient. */
    public static boolean ignored(int target) { return target < 0; }

    /**
     * Softmax of each row of logits[N,V] in place; losses[i] = -log p[target] (0 for ignored rows).
     * Returns the summed loss in double.
     */
    public static double forward(float[] logits, float[] losses, int[] targets, int N, int V) {
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * V;
                int tgt = targets[i];
                if (tgt >= V) throw new IllegalArgumentException("target id " + tgt + " >= vocab size " + V);
                float max = VecMath.max(logits, o, V);
                // -log p = log(sum of exp(x - max)) - (x_t - max): from the logit, so a tiny p loses nothing
                float xt = ignored(tgt) ? 0f : logits[o + tgt] - max;
                float sum = VecMath.expShiftSum(logits, o, V, max);
                VecMath.scale(logits, o, V, 1f / sum);
                losses[i] = ignored(tgt) ? 0f : (float) (Math.log(sum) - xt);
            }
        });
        double total = 0;
        for (int i = 0; i < N; i++) total += losses[i];
        return total;
    }

    /**
     * {@link #forward} over a vocabulary split across the ranks of {@code tp}: this rank holds columns [v0, v0 + V)
     * of the logits. Without ever assembling them: the row maxima are all-gathered (rowMax [tp.size() * N]), the
     * sums of exponentials and the target logits all-reduced (stats [2N]; only the owner of a target's column
     * adds its logit). Leaves this slice's probabilities in logits and every rank the same losses.
     */
    public static double forward(float[] logits, float[] losses, int[] targets, int N, int V, int v0, Communicator tp,
                                 float[] rowMax, float[] stats) {
        int r = tp.rank(), n = tp.size();
        Parallel.forRange(N, (w, from, to) -> { for (int i = from; i < to; i++) rowMax[r * N + i] = VecMath.max(logits, i * V, V); });
        tp.allGather(rowMax, 0, N);
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                float m = rowMax[i];
                for (int s = 1; s < n; s++) m = Math.max(m, rowMax[s * N + i]);
                int tgt = targets[i] - v0;
                stats[N + i] = tgt >= 0 && tgt < V ? logits[i * V + tgt] - m : 0f;
                stats[i] = VecMath.expShiftSum(logits, i * V, V, m);
            }
        });
        tp.allReduceSum(stats, 0, 2 * N);
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                VecMath.scale(logits, i * V, V, 1f / stats[i]);
                losses[i] = ignored(targets[i]) ? 0f : (float) (Math.log(stats[i]) - stats[N + i]);
            }
        });
        double total = 0;
        for (int i = 0; i < N; i++) total += losses[i];
        return total;
    }

    /**
     * probs[N,V] becomes dlogits = (probs - onehot(target)) * scale; ignored rows become zero. The columns are
     * [v0, v0 + V) of the vocabulary (0 unless a tensor-parallel rank's): the one-hot falls on its owner.
     */
    public static void backward(float[] probs, int[] targets, int N, int V, int v0, float scale) {
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * V, tgt = targets[i];
                if (ignored(tgt)) { java.util.Arrays.fill(probs, o, o + V, 0f); continue; }
                VecMath.scale(probs, o, V, scale);
                if (tgt - v0 >= 0 && tgt - v0 < V) probs[o + tgt - v0] -= scale;
            }
        });
    }
}
