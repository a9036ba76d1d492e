package ai.wafer.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * LayerNorm over the last dimension C, forward and backward side by side (as in llm.c).
 * Row statistics are accumulated in double (the fixtures demand 1e-4 relative after many layers), in vector lanes
 * added in a fixed order: the same bits on any thread count. (One double add after another, a chain of dependent
 * adds per row, made LayerNorm 80 ms of a 111M step, at 4 GB/s.)
 */
public final class LayerNorm {
    private LayerNorm() {}

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    /** As many floats as D has doubles: a float vector widens to one double vector. */
    private static final VectorSpecies<Float> H = VecMath.HD;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** out[N,C] = (inp - mean) * rstd * w + b (w at wo, b at bo); saves mean[N] and rstd[N] for the backward pass. */
    public static void forward(float[] out, float[] mean, float[] rstd, float[] inp, float[] w, int wo, float[] b, int bo,
                               int N, int C, float eps) {
        Parallel.forRange(N, (worker, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * C;
                double m = VecMath.doubleSum(inp, o, C) / C;
                double r = 1.0 / Math.sqrt(VecMath.squaredDeviations(inp, o, C, m) / C + eps);
                float mf = (float) m, rf = (float) r;
                normalize(out, inp, o, C, mf, rf, w, wo, b, bo);
                mean[i] = mf;
                rstd[i] = rf;
            }
        });
    }

    /** out = (x - m) * r * w + b over one row, in float (the same operations, unfused, as the scalar tail). */
    private static void normalize(float[] out, float[] x, int o, int n, float m, float r, float[] w, int wo, float[] b, int bo) {
        int c = 0;
        for (int ub = F.loopBound(n); c < ub; c += F.length())
            FloatVector.fromArray(F, x, o + c).sub(m).mul(r).mul(FloatVector.fromArray(F, w, wo + c)).add(FloatVector.fromArray(F, b, bo + c))
                    .intoArray(out, o + c);
        for (; c < n; c++) out[o + c] = (x[o + c] - m) * r * w[wo + c] + b[bo + c];
    }

    /**
     * dinp[N,C] += gradient through the normalisation; dw (at wo, as w) and db (at bo) accumulate, each skipped when null.
     * dw/db sums run over rows, so each worker keeps its own partial sums in {@code scratch}
     * ([threads, 2C]) and they are added in a fixed order: the result does not depend on timing.
     */
    public static void backward(float[] dinp, float[] dout, float[] inp, float[] w, float[] dw, int wo, float[] db, int bo,
                                float[] mean, float[] rstd, int N, int C, float[] scratch) {
        int threads = Parallel.threads();
        java.util.Arrays.fill(scratch, 0, threads * 2 * C, 0f);
        Parallel.forRange(N, (worker, from, to) -> {
            int so = worker * 2 * C;
            for (int i = from; i < to; i++) backwardRow(dinp, dout, inp, i * C, C, mean[i], rstd[i], w, wo, scratch, so);
        });
        for (int t = 0; t < threads; t++) {
            int so = t * 2 * C;
            if (dw != null) for (int c = 0; c < C; c++) dw[wo + c] += scratch[so + c];
            if (db != null) for (int c = 0; c < C; c++) db[bo + c] += scratch[so + C + c];
        }
    }

    /** One row of the backward: dinp[o..] += (dnorm - mean(dnorm) - norm mean(dnorm norm)) r; scratch[so..] += dout norm, dout. */
    private static void backwardRow(float[] dinp, float[] dout, float[] inp, int o, int C, float m, float r, float[] w, int wo,
                                    float[] scratch, int so) {
        // the two means of the LayerNorm gradient formula: dnorm and dnorm * norm in float, summed in double lanes
        DoubleVector s0 = DoubleVector.zero(D), s1 = s0;
        int c = 0, L = H.length();
        for (; c + L <= C; c += L) {
            FloatVector norm = FloatVector.fromArray(H, inp, o + c).sub(m).mul(r);
            FloatVector dnorm = FloatVector.fromArray(H, w, wo + c).mul(FloatVector.fromArray(H, dout, o + c));
            s0 = s0.add(dnorm.convertShape(VectorOperators.F2D, D, 0));
            s1 = s1.add(dnorm.mul(norm).convertShape(VectorOperators.F2D, D, 0));
        }
        double dnormMean = VecMath.inOrder(s0), dnormNormMean = VecMath.inOrder(s1);
        for (; c < C; c++) {
            float norm = (inp[o + c] - m) * r, dnorm = w[wo + c] * dout[o + c];
            dnormMean += dnorm;
            dnormNormMean += dnorm * norm;
        }
        float a = (float) (dnormMean / C), bb = (float) (dnormNormMean / C);
        c = 0;
        for (int ub = F.loopBound(C); c < ub; c += F.length()) {
            FloatVector d = FloatVector.fromArray(F, dout, o + c);
            FloatVector norm = FloatVector.fromArray(F, inp, o + c).sub(m).mul(r);
            FloatVector dnorm = FloatVector.fromArray(F, w, wo + c).mul(d);
            FloatVector.fromArray(F, dinp, o + c).add(dnorm.sub(a).sub(norm.mul(bb)).mul(r)).intoArray(dinp, o + c);
            FloatVector.fromArray(F, scratch, so + c).add(d.mul(norm)).intoArray(scratch, so + c);
            FloatVector.fromArray(F, scratch, so + C + c).add(d).intoArray(scratch, so + C + c);
        }
        for (; c < C; c++) {
            float norm = (inp[o + c] - m) * r, dnorm = w[wo + c] * dout[o + c];
            dinp[o + c] += (dnorm - a - norm * bb) * r;
            scratch[so + c] += dout[o + c] * norm;
            scratch[so + C + c] += dout[o + c];
        }
    }
}
