package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The MLP nonlinearity, forward and backward: exact GELU (x * Phi(x), the erf form Cerebras-GPT
 * uses), the tanh approximation ("gelu_new"), or ReLU. All in float lanes. In training the forward also
 * writes the slope f'(x) where the backward will find it (in place of the input, which nothing else reads):
 * the exact GELU's slope shares the forward's exponential and polynomial, and the backward is then a product
 * at memory speed instead of a second pass of transcendental work.
 */
public final class Gelu {
    private Gelu() {}

    private static final float SQRT_HALF = (float) Math.sqrt(0.5), INV_SQRT_2PI = (float) (1.0 / Math.sqrt(2 * Math.PI));
    private static final float TANH_K = (float) Math.sqrt(2.0 / Math.PI), TANH_A = 0.044715f;

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /**
     * out[i] = f(inp[i]) and, unless {@code slope} is null, slope[i] = f'(inp[i]) for i < n. slope may be inp (the
     * backward's copy replaces the input); out may be inp only without a slope.
     */
    public static void forward(Activation act, float[] out, float[] inp, float[] slope, int n) {
        Parallel.forElements(n, (w, from, to) -> {
            switch (act) {
                case GELU -> exactForward(out, inp, slope, from, to);
                case GELU_TANH -> tanhForward(out, inp, slope, from, to);
                case RELU -> {
                    for (int i = from; i < to; i++) {
                        float x = inp[i];
                        out[i] = Math.max(x, 0f);
                        if (slope != null) slope[i] = x > 0 ? 1f : 0f;
                    }
                }
            }
        });
    }

    /** dinp[i] = dout[i] * slope[i], the slope the forward kept (dinp may be dout). */
    public static void backward(float[] dinp, float[] slope, float[] dout, int n) {
        Parallel.forElements(n, (w, from, to) -> {
            int i = from;
            for (int ub = from + S.loopBound(to - from); i < ub; i += S.length())
                FloatVector.fromArray(S, dout, i).mul(FloatVector.fromArray(S, slope, i)).intoArray(dinp, i);
            for (; i < to; i++) dinp[i] = dout[i] * slope[i];
        });
    }

    // The vector loops live in small static methods of their own, and each pass over a block computes half of the
    // formula: the exponential into a per-thread block in L1, then the rest. C2 stops inlining once a compilation has
    // created 18,000 nodes (NodeCountInliningCutoff, fixed in product builds), and the Vector API spends hundreds a
    // lane operation: with Phi and its exponential in one loop, the polynomial stayed a call whose vectors were boxed on
    // every iteration (forward 10 against 6 ms a 111M layer, -XX:+PrintInlining showed it). The masked tails run the
    // same lane code, so every element gets the same float formula.
    private static void exactForward(float[] out, float[] inp, float[] slope, int from, int to) {
        float[] e = GAUSS.get();
        for (int b = from; b < to; b += BLOCK) {
            int end = Math.min(to, b + BLOCK);
            gaussBlock(e, inp, b, end);
            if (slope == null) forwardBlock(out, inp, e, b, end);
            else slopeBlock(out, slope, inp, e, b, end);
        }
    }

    private static final int BLOCK = 1024;
    private static final ThreadLocal<float[]> GAUSS = ThreadLocal.withInitial(() -> new float[BLOCK]);

    /** e[0, end - b) = exp(-x^2 / 2) of inp[b, end), x clamped as {@link #clamp} does. */
    private static void gaussBlock(float[] e, float[] inp, int b, int end) {
        int i = b;
        for (int ub = b + S.loopBound(end - b); i < ub; i += S.length()) gauss(clamp(FloatVector.fromArray(S, inp, i))).intoArray(e, i - b);
        if (i < end) {
            var m = S.indexInRange(i, end);
            gauss(clamp(FloatVector.fromArray(S, inp, i, m))).intoArray(e, i - b, m);
        }
    }

    /** out[b, end) = x Phi(x), Phi from the block's exponentials. */
    private static void forwardBlock(float[] out, float[] inp, float[] e, int b, int end) {
        int i = b;
        for (int ub = b + S.loopBound(end - b); i < ub; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, inp, i);
            x.mul(phi(clamp(x), FloatVector.fromArray(S, e, i - b))).intoArray(out, i);
        }
        if (i < end) {
            var m = S.indexInRange(i, end);
            FloatVector x = FloatVector.fromArray(S, inp, i, m);
            x.mul(phi(clamp(x), FloatVector.fromArray(S, e, i - b, m))).intoArray(out, i, m);
        }
    }

    /**
     * out[b, end) = x Phi(x) as {@link #forwardBlock}, and slope[b, end) = GELU'(x) = Phi(x) + x pdf(x), pdf(x) =
     * exp(-x^2/2) / sqrt(2 pi): the same Phi and exponential serve both. Each lane reads x before it writes either.
     */
    private static void slopeBlock(float[] out, float[] slope, float[] inp, float[] e, int b, int end) {
        int i = b;
        for (int ub = b + S.loopBound(end - b); i < ub; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, inp, i), xc = clamp(x), ei = FloatVector.fromArray(S, e, i - b), phi = phi(xc, ei);
            x.mul(phi).intoArray(out, i);
            xc.mul(ei.mul(INV_SQRT_2PI)).add(phi).intoArray(slope, i);
        }
        if (i < end) {
            var m = S.indexInRange(i, end);
            FloatVector x = FloatVector.fromArray(S, inp, i, m), xc = clamp(x), ei = FloatVector.fromArray(S, e, i - b, m), phi = phi(xc, ei);
            x.mul(phi).intoArray(out, i, m);
            xc.mul(ei.mul(INV_SQRT_2PI)).add(phi).intoArray(slope, i, m);
        }
    }

    /** Phi and pdf are 0 or 1 in float beyond |x| = 20; x^2 of a huge x would overflow into NaN. */
    private static FloatVector clamp(FloatVector x) { return x.max(-20f).min(20f); }

    /**
     * Phi(x) = erfc(-x / sqrt 2) / 2 from e = exp(-x^2 / 2), x already clamped; relative error below 1e-6 also in the
     * lower tail (what an AdamW step sees of a unit that is almost always off; see {@link #tail}).
     */
    private static FloatVector phi(FloatVector x, FloatVector e) {
        FloatVector half = tail(x, e);
        return half.blend(FloatVector.broadcast(S, 1f).sub(half), x.compare(VectorOperators.GT, 0f));
    }

    /**
     * exp(-x^2 / 2) with x^2 taken exactly as hi + lo (an fma): exp(-hi/2) (1 - lo/2). -hi/2 is exact in float, so the
     * relative error stays the exponential's own (2e-7) out to |x| = 13, where the value leaves float's normal range.
     */
    private static FloatVector gauss(FloatVector x) {
        FloatVector hi = x.mul(x), lo = x.fma(x, hi.neg());
        return VecMath.exp(hi.mul(-0.5f)).mul(lo.fma(-0.5f, 1f));
    }

    /**
     * Phi(-|x|) = erfc(a) / 2, a = |x| / sqrt 2, from e = exp(-a^2): erfc(a) = t e R(t), t = 1 / (1 + a/2), R a degree-9
     * polynomial in t fitted to erfc(a) exp(a^2) / t for |x| up to 20 by relative error (tools/fit_erfc.py: 4e-8; 1.7e-7
     * evaluated in float). The form is Numerical Recipes' erfcc with exp(P(t)) replaced by the polynomial R, so that
     * pdf's exponential serves both and the sum -a^2 + P(t) never meets float rounding.
     */
    private static FloatVector tail(FloatVector x, FloatVector e) {
        FloatVector t = FloatVector.broadcast(S, 1f).div(x.abs().fma(SQRT_HALF * 0.5f, 1f));
        FloatVector r = t.fma(0.0025087904650717974f, -0.07220181822776794f);
        r = r.fma(t, FloatVector.broadcast(S, 0.3141893148422241f));
        r = r.fma(t, FloatVector.broadcast(S, -0.5248494744300842f));
        r = r.fma(t, FloatVector.broadcast(S, 0.30771809816360474f));
        r = r.fma(t, FloatVector.broadcast(S, -0.04158228263258934f));
        r = r.fma(t, FloatVector.broadcast(S, 0.20750540494918823f));
        r = r.fma(t, FloatVector.broadcast(S, 0.24214999377727509f));
        r = r.fma(t, FloatVector.broadcast(S, 0.282480388879776f));
        r = r.fma(t, FloatVector.broadcast(S, 0.2820815145969391f));
        return t.mul(e).mul(r).mul(0.5f);
    }

    // gelu_new: 0.5 x (1 + tanh u) = x s with s = sigmoid(2u) = 1 / (1 + exp(-2u)), u = k (x + a x^3), which keeps
    // its relative accuracy where tanh u is near -1; the derivative is s + 2 x s (1 - s) k (1 + 3 a x^2), s (1 - s) = s (s exp(-2u)).
    private static void tanhForward(float[] out, float[] inp, float[] slope, int from, int to) {
        int i = from;
        for (int ub = from + S.loopBound(to - from); i < ub; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, inp, i);
            x.div(tanhExp(x).add(1f)).intoArray(out, i);
            if (slope != null) tanhGrad(x).intoArray(slope, i);
        }
        if (i < to) {
            var m = S.indexInRange(i, to);
            FloatVector x = FloatVector.fromArray(S, inp, i, m);
            x.div(tanhExp(x).add(1f)).intoArray(out, i, m);
            if (slope != null) tanhGrad(x).intoArray(slope, i, m);
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
