package ai.wafer.model;

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

    /** probs[N,V] becomes dlogits = (probs - onehot(target)) * scale; ignored rows become zero. */
    public static void backward(float[] probs, int[] targets, int N, int V, float scale) {
        Parallel.forRange(N, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * V, tgt = targets[i];
                if (ignored(tgt)) { java.util.Arrays.fill(probs, o, o + V, 0f); continue; }
                scale(probs, o, V, scale);
                probs[o + tgt] -= scale;
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
