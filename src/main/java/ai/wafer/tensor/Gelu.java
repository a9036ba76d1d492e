package ai.wafer.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The MLP nonlinearity, forward and backward: exact GELU (x * Phi(x), the erf form Cerebras-GPT
 * uses), the tanh approximation ("gelu_new"), or ReLU.
 */
public final class Gelu {
    private Gelu() {}

    private static final double SQRT_HALF = Math.sqrt(0.5);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2 * Math.PI);
    private static final double TANH_K = Math.sqrt(2.0 / Math.PI);

    // Exact GELU is evaluated in double lanes: float lanes cost the fixtures' 1e-4 after three AdamW
    // steps. D holds doubles, S the same number of floats (half the bits) for loads and stores.
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> S = VectorSpecies.of(float.class, VectorShape.forBitSize(D.vectorBitSize() / 2));

    private static DoubleVector load(float[] a, int i) {
        return (DoubleVector) FloatVector.fromArray(S, a, i).convertShape(VectorOperators.F2D, D, 0);
    }

    private static void store(DoubleVector v, float[] a, int i) {
        ((FloatVector) v.convertShape(VectorOperators.D2F, S, 0)).intoArray(a, i);
    }

    public static void forward(Activation act, float[] out, float[] inp, int n) {
        Parallel.forRange(n, (w, from, to) -> {
            switch (act) {
                case GELU -> exactForward(out, inp, from, to);
                case GELU_TANH -> { for (int i = from; i < to; i++) { double x = inp[i];
                    out[i] = (float) (0.5 * x * (1 + Math.tanh(TANH_K * (x + 0.044715 * x * x * x)))); } }
                case RELU -> { for (int i = from; i < to; i++) out[i] = Math.max(inp[i], 0f); }
            }
        });
    }

    /** dinp[i] = dout[i] * f'(inp[i]) (overwrites dinp; it may be the same array as dout). */
    public static void backward(Activation act, float[] dinp, float[] inp, float[] dout, int n) {
        Parallel.forRange(n, (w, from, to) -> {
            switch (act) {
                case GELU -> exactBackward(dinp, inp, dout, from, to);
                case GELU_TANH -> { for (int i = from; i < to; i++) { double x = inp[i];
                    double t = Math.tanh(TANH_K * (x + 0.044715 * x * x * x));
                    double d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * TANH_K * (1 + 3 * 0.044715 * x * x);
                    dinp[i] = (float) (dout[i] * d); } }
                case RELU -> { for (int i = from; i < to; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0f; }
            }
        });
    }

    // The vector loops live in small static methods of their own: inside the big lambda the JIT
    // gave up inlining the Vector API calls and the backward ran 8x slower than the forward.
    private static void exactForward(float[] out, float[] inp, int from, int to) {
        int i = from;
        for (int ub = from + S.loopBound(to - from); i < ub; i += S.length()) {
            DoubleVector x = load(inp, i);
            store(x.mul(phi(x)), out, i);
        }
        for (; i < to; i++) { double x = inp[i]; out[i] = (float) (x * phi(x)); }
    }

    private static void exactBackward(float[] dinp, float[] inp, float[] dout, int from, int to) {
        int i = from;
        for (int ub = from + S.loopBound(to - from); i < ub; i += S.length()) {
            DoubleVector x = load(inp, i);
            DoubleVector pdf = VecMath.exp(x.mul(x).mul(-0.5)).mul(INV_SQRT_2PI);
            store(phi(x).add(x.mul(pdf)).mul(load(dout, i)), dinp, i);
        }
        for (; i < to; i++) {
            double x = inp[i];
            double d = phi(x) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
            dinp[i] = (float) (dout[i] * d);
        }
    }

    /** Phi on a vector: the same formula as {@link #erfc}, lane by lane. */
    static DoubleVector phi(DoubleVector x) {
        DoubleVector z = x.mul(-SQRT_HALF), az = z.abs();
        DoubleVector t = DoubleVector.broadcast(D, 1.0).div(az.mul(0.5).add(1.0));
        DoubleVector p = t.mul(0.17087277).add(-0.82215223);
        p = p.mul(t).add(1.48851587);
        p = p.mul(t).add(-1.13520398);
        p = p.mul(t).add(0.27886807);
        p = p.mul(t).add(-0.18628806);
        p = p.mul(t).add(0.09678418);
        p = p.mul(t).add(0.37409196);
        p = p.mul(t).add(1.00002368);
        p = p.mul(t).add(-1.26551223);
        DoubleVector r = t.mul(VecMath.exp(az.mul(az).neg().add(p)));
        VectorMask<Double> neg = z.lt(0.0);
        r = r.blend(DoubleVector.broadcast(D, 2.0).sub(r), neg); // erfc(-a) = 2 - erfc(a)
        return r.mul(0.5);
    }

    /** The standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2, accurate to ~1e-7 relative even in the tails. */
    public static double phi(double x) { return 0.5 * erfc(-x * SQRT_HALF); }

    /**
     * Complementary error function by a Chebyshev-fitted exponential (fractional error below 1.2e-7
     * for every z): erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + z/2), for z >= 0.
     */
    static double erfc(double z) {
        double az = Math.abs(z);
        double t = 1.0 / (1.0 + 0.5 * az);
        double p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double r = t * Math.exp(-az * az + p);
        return z >= 0 ? r : 2.0 - r;
    }
}
