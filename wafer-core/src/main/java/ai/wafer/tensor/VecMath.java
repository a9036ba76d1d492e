package ai.wafer.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp on vector lanes from plain IEEE operations (multiply, fused multiply-add, rounding, bit
 * shifts). {@code lanewise(EXP)} is not used because its last bit depends on whether the JIT has
 * compiled the loop yet (an intrinsic stub when compiled, a Java fallback before): a run resumed
 * in a fresh JVM would then drift by an ulp from the one that never stopped. These give the same
 * bits interpreted or compiled, on every run.
 *
 * <p>Method: exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 with ln 2 split in two
 * parts (Cody-Waite) so r is exact enough, |r| <= ln2/2, and exp(r) by its Taylor polynomial.
 */
public final class VecMath {
    private VecMath() {}

    private static final float LOG2E_F = 1.44269504f, LN2_HI_F = 0.693145752f, LN2_LO_F = 1.42860677e-6f;
    private static final double LOG2E = 1.4426950408889634, LN2_HI = 0.6931471803691238, LN2_LO = 1.9082149292705877e-10;

    /** Relative error below 2e-7 for x in [-87, 88]; 0 below, +inf above. */
    public static FloatVector exp(FloatVector x) {
        var under = x.lt(-87.3f);
        x = x.max(-87.3f).min(88.7f);
        FloatVector n = x.mul(LOG2E_F).add(12582912f).sub(12582912f); // round to nearest (adding 1.5 * 2^23 drops the fraction)
        FloatVector r = n.fma(FloatVector.broadcast(x.species(), -LN2_HI_F), x);
        r = n.fma(FloatVector.broadcast(x.species(), -LN2_LO_F), r);
        // 1 + r + r^2/2! + ... + r^7/7!, Horner with fma
        FloatVector p = r.fma(1f / 5040f, 1f / 720f);
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 120f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 24f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f / 6f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 0.5f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f));
        p = p.fma(r, FloatVector.broadcast(x.species(), 1f));
        // 2^n: n + 127 into the exponent bits; n in [-126, 128] after the clamp, split in two factors to stay normal
        IntVector ni = (IntVector) n.convert(VectorOperators.F2I, 0);
        IntVector h = ni.lanewise(VectorOperators.ASHR, 1);
        FloatVector s1 = h.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = ni.sub(h).add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(s1).mul(s2).blend(0f, under);
    }

    private static final double[] TAYLOR = {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
            1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};

    /** Relative error about 1e-15 for x in [-708, 709]; 0 below, +inf above. */
    public static DoubleVector exp(DoubleVector x) {
        var under = x.lt(-708.0);
        x = x.max(-708.0).min(709.0);
        DoubleVector n = x.mul(LOG2E).add(6755399441055744.0).sub(6755399441055744.0); // round to nearest (1.5 * 2^52)
        DoubleVector r = n.fma(DoubleVector.broadcast(x.species(), -LN2_HI), x);
        r = n.fma(DoubleVector.broadcast(x.species(), -LN2_LO), r);
        DoubleVector p = DoubleVector.broadcast(x.species(), 1.0 / 479001600.0); // 1/12!
        for (double ci : TAYLOR) p = p.fma(r, DoubleVector.broadcast(x.species(), ci));
        LongVector nl = (LongVector) n.convert(VectorOperators.D2L, 0);
        LongVector h = nl.lanewise(VectorOperators.ASHR, 1);
        DoubleVector s1 = h.add(1023).lanewise(VectorOperators.LSHL, 52).reinterpretAsDoubles();
        DoubleVector s2 = nl.sub(h).add(1023).lanewise(VectorOperators.LSHL, 52).reinterpretAsDoubles();
        return p.mul(s1).mul(s2).blend(0.0, under);
    }

    /**
     * The sum of the lanes, as a fixed tree: each lane i plus lane i ^ h, for h = L/2 down to 1 (log2 L swaps and adds,
     * where adding lane by lane in order took L extracts and a chain of L dependent adds: a decode step sums each of the
     * tied head's 50,257 rows and each cached position's score). {@code reduceLanes(ADD)} is free to add in any order,
     * and does (a tree when compiled, a loop before), so its last bit would depend on the JIT; this order is fixed.
     * Straight-line, each shuffle a constant: compiled on its own (where a caller's compilation ran out of nodes to
     * inline it, as the attention softmax's does), a loop over an array of shuffles allocated vectors on every call,
     * 5.8 MB a 111M layer, and training slowed by a third once those allocations began to touch fresh heap pages.
     */
    public static float sum(FloatVector v) {
        if (v.length() != L || L > 32) {
            float s = 0f;
            for (int i = 0; i < v.length(); i++) s += v.lane(i);
            return s;
        }
        if (L == 32) v = v.add(v.rearrange(SWAP16));
        if (L >= 16) v = v.add(v.rearrange(SWAP8));
        if (L >= 8) v = v.add(v.rearrange(SWAP4));
        if (L >= 4) v = v.add(v.rearrange(SWAP2));
        if (L >= 2) v = v.add(v.rearrange(SWAP1));
        return v.lane(0);
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Lane i to lane i ^ h (null where h >= L). */
    private static final VectorShuffle<Float> SWAP16 = swap(16), SWAP8 = swap(8), SWAP4 = swap(4), SWAP2 = swap(2), SWAP1 = swap(1);

    private static VectorShuffle<Float> swap(int h) { return h < L ? VectorShuffle.fromOp(F, i -> i ^ h) : null; }

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    /** As many floats as D has doubles: a float vector widens to one double vector. */
    static final VectorSpecies<Float> HD = VectorSpecies.of(float.class, VectorShape.forBitSize(D.vectorBitSize() / 2));

    /** The sum of x[o, o + n) in double lanes (LayerNorm's mean). */
    public static double doubleSum(float[] x, int o, int n) {
        DoubleVector a0 = DoubleVector.zero(D), a1 = a0;
        int c = 0, L = HD.length();
        for (; c + 2 * L <= n; c += 2 * L) {
            a0 = a0.add(widen(x, o + c));
            a1 = a1.add(widen(x, o + c + L));
        }
        double s = inOrder(a0.add(a1));
        for (; c < n; c++) s += x[o + c];
        return s;
    }

    /**
     * The sum of (x - m)^2 over x[o, o + n) in double lanes, two accumulators added lane by lane in order, then the tail
     * (LayerNorm's variance; with m = 0 every gradient norm's blocks, {@code AdamW.squaredSum}).
     */
    public static double squaredDeviations(float[] x, int o, int n, double m) {
        DoubleVector a0 = DoubleVector.zero(D), a1 = a0;
        int c = 0, L = HD.length();
        for (; c + 2 * L <= n; c += 2 * L) {
            DoubleVector d0 = widen(x, o + c).sub(m), d1 = widen(x, o + c + L).sub(m);
            a0 = d0.fma(d0, a0);
            a1 = d1.fma(d1, a1);
        }
        double s = inOrder(a0.add(a1));
        for (; c < n; c++) { double d = x[o + c] - m; s = Math.fma(d, d, s); }
        return s;
    }

    /** The lanes of v added first to last (reduceLanes may add them in any order, which the JIT chooses). */
    static double inOrder(DoubleVector v) {
        double s = 0;
        for (int l = 0; l < v.length(); l++) s += v.lane(l);
        return s;
    }

    private static DoubleVector widen(float[] x, int at) {
        return (DoubleVector) FloatVector.fromArray(HD, x, at).convertShape(VectorOperators.F2D, D, 0);
    }

    /** sum_i a[ao + i] * b[bo + i] for i < n: one vector accumulator, summed by {@link #sum}, then the scalar tail. */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0, upper = F.loopBound(n);
        for (; i < upper; i += F.length()) acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        float s = sum(acc);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /** y[yo + i] += alpha * x[xo + i] for i < n. */
    public static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        FloatVector a = FloatVector.broadcast(F, alpha);
        int i = 0, upper = F.loopBound(n);
        for (; i < upper; i += F.length())
            FloatVector.fromArray(F, x, xo + i).fma(a, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    /** The largest of x[o, o + n). */
    public static float max(float[] x, int o, int n) {
        int i = 0, ub = F.loopBound(n);
        FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (; i < ub; i += F.length()) m = m.max(FloatVector.fromArray(F, x, o + i));
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) r = Math.max(r, x[o + i]);
        return r;
    }

    /** x[i] = exp(x[i] - shift); returns the sum. */
    public static float expShiftSum(float[] x, int o, int n, float shift) {
        int i = 0, ub = F.loopBound(n);
        FloatVector acc = FloatVector.zero(F);
        for (; i < ub; i += F.length()) {
            FloatVector e = FloatVector.fromArray(F, x, o + i).sub(shift);
            e = exp(e);
            e.intoArray(x, o + i);
            acc = acc.add(e);
        }
        // sum(acc)'s tree written out (the same adds in the same order): the attention softmax's compilation inlines this
        // method and then runs out of nodes (C2's NodeCountInliningCutoff) before a call to sum, which then took the
        // accumulator boxed, 11 MB a 111M step; the Vector API's own methods are always inlined
        float s;
        if (L > 32) s = sum(acc);
        else {
            if (L == 32) acc = acc.add(acc.rearrange(SWAP16));
            if (L >= 16) acc = acc.add(acc.rearrange(SWAP8));
            if (L >= 8) acc = acc.add(acc.rearrange(SWAP4));
            if (L >= 4) acc = acc.add(acc.rearrange(SWAP2));
            if (L >= 2) acc = acc.add(acc.rearrange(SWAP1));
            s = acc.lane(0);
        }
        for (; i < n; i++) { float e = (float) Math.exp(x[o + i] - shift); x[o + i] = e; s += e; }
        return s;
    }

    /** x[o, o + n) *= a. */
    public static void scale(float[] x, int o, int n, float a) {
        int i = 0, ub = F.loopBound(n);
        for (; i < ub; i += F.length()) FloatVector.fromArray(F, x, o + i).mul(a).intoArray(x, o + i);
        for (; i < n; i++) x[o + i] *= a;
    }
}
