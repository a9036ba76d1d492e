package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The MLP nonlinearity, forward and backward: exact GELU (x * Phi(x), the erf form Cerebras-GPT
 * uses), the tanh approximation ("gelu_new"), or ReLU. All in float lanes.
 */
public final class Gelu {
    private Gelu() {}

    private static final float SQRT_HALF = (float) Math.sqrt(0.5), INV_SQRT_2PI = (float) (1.0 / Math.sqrt(2 * Math.PI));
    private static final float TANH_K = (float) Math.sqrt(2.0 / Math.PI), TANH_A = 0.044715f;

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    public static void forward(Activation act, float[] out, float[] inp, int n) {
        Parallel.forElements(n, (w, from, to) -> {
            switch (act) {
                case GELU -> exactForward(out, inp, from, to);
                case GELU_TANH -> tanhForward(out, inp, from, to);
                case RELU -> { for (int i = from; i < to; i++) out[i] = Math.max(inp[i], 0f); }
            }
        });
    }

    /** dinp[i] = dout[i] * f'(inp[i]) (overwrites dinp; it may be the same array as dout). */
    public static void backward(Activation act, float[] dinp, float[] inp, float[] dout, int n) {
        Parallel.forElements(n, (w, from, to) -> {
            switch (act) {
                case GELU -> exactBackward(dinp, inp, dout, from, to);
                case GELU_TANH -> tanhBackward(dinp, inp, dout, from, to);
                case RELU -> { for (int i = from; i < to; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0f; }
            }
        });
    }

    // The vector loops live in small static methods of their own: inside the big lambda the JIT
    // gave up inlining the Vector API calls and the backward ran 8x slower than the forward. The tail
    // runs the same lane code under a mask, so every element gets the same float formula.
    private static void exactForward(float[] out, float[] inp, int from, int to) {
        int i = from;
        for (int ub = from + S.loopBound(to - from); i < ub; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, inp, i);
            x.mul(phi(x)).intoArray(out, i);
        }
        if (i < to) {
            var m = S.indexInRange(i, to);
            FloatVector x = FloatVector.fromArray(S, inp, i, m);
            x.mul(phi(x)).intoArray(out, i, m);
        }
    }

    /**
     * GELU'(x) = Phi(x) + x pdf(x), in blocks of {@link #BLOCK}: Phi of the block into a per-thread scratch, then pdf
     * and the product with dout. (One loop with both, Phi inlined, compiled in some runs into code 6x slower than
     * the forward: 590 against 91 ms a 111M step, {@code bench train --profile}, depending on what the JIT had
     * compiled before; two small loops compile as the forward's does.)
     */
    private static void exactBackward(float[] dinp, float[] inp, float[] dout, int from, int to) {
        float[] phi = PHI.get();
        for (int b = from; b < to; b += BLOCK) {
            int e = Math.min(to, b + BLOCK);
            phiBlock(phi, inp, b, e);
            gradBlock(dinp, inp, dout, phi, b, e);
        }
    }

    private static final int BLOCK = 1024;
    private static final ThreadLocal<float[]> PHI = ThreadLocal.withInitial(() -> new float[BLOCK]);

    /** phi[0, e - b) = Phi(inp[b, e)). */
    private static void phiBlock(float[] phi, float[] inp, int b, int e) {
        int i = b;
        for (int ub = b + S.loopBound(e - b); i < ub; i += S.length()) phi(FloatVector.fromArray(S, inp, i)).intoArray(phi, i - b);
        if (i < e) {
            var m = S.indexInRange(i, e);
            phi(FloatVector.fromArray(S, inp, i, m)).intoArray(phi, i - b, m);
        }
    }

    /** dinp[b, e) = (Phi + x pdf(x)) dout, pdf(x) = exp(-x^2/2) / sqrt(2 pi) with x^2 split exactly (see {@link #phi}); pdf is 0 past |x| = 20. */
    private static void gradBlock(float[] dinp, float[] inp, float[] dout, float[] phi, int b, int e) {
        int i = b;
        for (int ub = b + S.loopBound(e - b); i < ub; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, inp, i);
            x.fma(pdf(x), FloatVector.fromArray(S, phi, i - b)).mul(FloatVector.fromArray(S, dout, i)).intoArray(dinp, i);
        }
        if (i < e) {
            var m = S.indexInRange(i, e);
            FloatVector x = FloatVector.fromArray(S, inp, i, m);
            x.fma(pdf(x), FloatVector.fromArray(S, phi, i - b, m)).mul(FloatVector.fromArray(S, dout, i, m)).intoArray(dinp, i, m);
        }
    }

    private static FloatVector pdf(FloatVector x) {
        FloatVector xc = x.max(-20f).min(20f), hi = xc.mul(xc), lo = xc.fma(xc, hi.neg());
        return VecMath.exp(hi.mul(-0.5f)).mul(lo.fma(-0.5f, 1f)).mul(INV_SQRT_2PI);
    }

    /**
     * Phi(x) = erfc(-x / sqrt 2) / 2 in float lanes, relative error below 1e-6 also in the lower tail (what an
     * AdamW step sees of a unit that is almost always off). erfc(a) = t exp(-a^2 + P(t)) for a = |x| / sqrt 2,
     * t = 1 / (1 + a/2) (Numerical Recipes' erfcc, a Chebyshev-fitted exponential: fractional error below 1.2e-7),
     * with a^2 = x^2 / 2 taken from the exact x^2 = hi + lo (an fma) and the sum -hi/2 + P(t) carried with its
     * rounding error, so the exp's argument (up to 87) loses nothing to float rounding; erfc(-a) = 2 - erfc(a) for x > 0.
     */
    static FloatVector phi(FloatVector x) {
        x = x.max(-20f).min(20f); // Phi is 0 or 1 in float beyond; x^2 of a huge x would overflow into NaN
        FloatVector ax = x.abs();
        FloatVector t = ax.fma(SQRT_HALF * 0.5f, 1f);
        t = FloatVector.broadcast(S, 1f).div(t);
        FloatVector p = t.fma(0.17087277f, -0.82215223f);
        p = p.fma(t, FloatVector.broadcast(S, 1.48851587f));
        p = p.fma(t, FloatVector.broadcast(S, -1.13520398f));
        p = p.fma(t, FloatVector.broadcast(S, 0.27886807f));
        p = p.fma(t, FloatVector.broadcast(S, -0.18628806f));
        p = p.fma(t, FloatVector.broadcast(S, 0.09678418f));
        p = p.fma(t, FloatVector.broadcast(S, 0.37409196f));
        p = p.fma(t, FloatVector.broadcast(S, 1.00002368f));
        p = p.fma(t, FloatVector.broadcast(S, -1.26551223f));
        FloatVector hi = x.mul(x), lo = x.fma(x, hi.neg());
        FloatVector a = hi.mul(-0.5f), s = a.add(p); // two-sum: s + e = a + p exactly
        FloatVector bb = s.sub(a), e = a.sub(s.sub(bb)).add(p.sub(bb));
        FloatVector half = t.mul(VecMath.exp(s)).mul(e.sub(lo.mul(0.5f)).add(1f)).mul(0.5f); // erfc(|x|/sqrt 2) / 2
        return half.blend(FloatVector.broadcast(S, 1f).sub(half), x.compare(VectorOperators.GT, 0f));
    }

    // gelu_new: 0.5 x (1 + tanh u) = x s with s = sigmoid(2u) = 1 / (1 + exp(-2u)), u = k (x + a x^3), which keeps
    // its relative accuracy where tanh u is near -1; the derivative is s + 2 x s (1 - s) k (1 + 3 a x^2), s (1 - s) = s (s exp(-2u)).
    private static void tanhForward(float[] out, float[] inp, int from, int to) {
        int i = from;
        for (int ub = from + S.loopBound(to - from); i < ub; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, inp, i);
            x.div(tanhExp(x).add(1f)).intoArray(out, i);
        }
        if (i < to) {
            var m = S.indexInRange(i, to);
            FloatVector x = FloatVector.fromArray(S, inp, i, m);
            x.div(tanhExp(x).add(1f)).intoArray(out, i, m);
        }
    }

    private static void tanhBackward(float[] dinp, float[] inp, float[] dout, int from, int to) {
        int i = from;
        for (int ub = from + S.loopBound(to - from); i < ub; i += S.length())
            tanhGrad(FloatVector.fromArray(S, inp, i)).mul(FloatVector.fromArray(S, dout, i)).intoArray(dinp, i);
        if (i < to) {
            var m = S.indexInRange(i, to);
            tanhGrad(FloatVector.fromArray(S, inp, i, m)).mul(FloatVector.fromArray(S, dout, i, m)).intoArray(dinp, i, m);
        }
    }

    private static FloatVector tanhGrad(FloatVector x) {
        FloatVector e = tanhExp(x), s = FloatVector.broadcast(S, 1f).div(e.add(1f));
        FloatVector du = x.mul(x).fma(3 * TANH_A * TANH_K, TANH_K);
        return x.mul(2f).mul(s).mul(s.mul(e)).fma(du, s);
    }

    /** exp(-2u) for gelu_new, its argument kept below 87 so that 1 + exp stays finite (gelu_new is below 1e-36 there). */
    private static FloatVector tanhExp(FloatVector x) {
        FloatVector u = x.mul(x).fma(TANH_A, 1f).mul(x).mul(TANH_K);
        return VecMath.exp(u.mul(-2f).min(87f));
    }
}
