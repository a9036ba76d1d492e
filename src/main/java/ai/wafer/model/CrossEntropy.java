package ai.wafer.model;

import ai.wafer.parallel.Communicator;
import ai.wafer.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Softmax cross-entropy over the vocabulary, fused with its backward: the logits buffer is turned
 * into probabilities in place (the forward), and later into dlogits = (p - onehot) * scale (the
 * backward). Keeping one [N,V] buffer instead of three matters: at V = 50257 it is the largest
 * activation of the model.
 */
public final class CrossEntropy {
    private CrossEntropy() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

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
                float max = max(logits, o, V);
                // -log p = log(sum of exp(x - max)) - (x_t - max): from the logit, so a tiny p loses nothing
                float xt = ignored(tgt) ? 0f : logits[o + tgt] - max;
                float sum = expShiftSum(logits, o, V, max);
                scale(logits, o, V, 1f / sum);
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
        Parallel.forRange(N, (w, from, to) -> { for (int i = from; i < to; i++) rowMax[r * N + i] = max(logits, i * V, V); });
        tp.allGather(rowMax, 0, N);
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                float m = rowMax[i];
                for (int s = 1; s < n; s++) m = Math.max(m, rowMax[s * N + i]);
                int tgt = targets[i] - v0;
                stats[N + i] = tgt >= 0 && tgt < V ? logits[i * V + tgt] - m : 0f;
                stats[i] = expShiftSum(logits, i * V, V, m);
            }
        });
        tp.allReduceSum(stats, 0, 2 * N);
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                scale(logits, i * V, V, 1f / stats[i]);
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
                scale(probs, o, V, scale);
                if (tgt - v0 >= 0 && tgt - v0 < V) probs[o + tgt - v0] -= scale;
            }
        });
    }

    static float max(float[] x, int o, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (; i < ub; i += S.length()) m = m.max(FloatVector.fromArray(S, x, o + i));
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) r = Math.max(r, x[o + i]);
        return r;
    }

    /** x[i] = exp(x[i] - shift); returns the sum. */
    static float expShiftSum(float[] x, int o, int n, float shift) {
        int i = 0, ub = S.loopBound(n);
        FloatVector acc = FloatVector.zero(S);
        for (; i < ub; i += S.length()) {
            FloatVector e = FloatVector.fromArray(S, x, o + i).sub(shift);
            e = ai.wafer.tensor.VecMath.exp(e);
            e.intoArray(x, o + i);
            acc = acc.add(e);
        }
        float s = ai.wafer.tensor.VecMath.sum(acc);
        for (; i < n; i++) { float e = (float) Math.exp(x[o + i] - shift); x[o + i] = e; s += e; }
        return s;
    }

    static void scale(float[] x, int o, int n, float a) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += S.length()) FloatVector.fromArray(S, x, o + i).mul(a).intoArray(x, o + i);
        for (; i < n; i++) x[o + i] *= a;
    }
}
