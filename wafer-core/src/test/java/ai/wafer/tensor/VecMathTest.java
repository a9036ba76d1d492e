package ai.wafer.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VecMathTest {
    @Test
    void floatExpMatchesMathExp() {
        var S = FloatVector.SPECIES_PREFERRED;
        float[] x = new float[S.length()], y = new float[S.length()];
        double worst = 0;
        for (double v = -87; v < 88.5; v += 0.0137) {
            for (int i = 0; i < x.length; i++) x[i] = (float) (v + i * 0.001);
            VecMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i] / Math.exp(x[i]) - 1));
        }
        assertTrue(worst < 3e-7, "relative error " + worst);
        java.util.Arrays.fill(x, -200f);
        VecMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        java.util.Arrays.fill(x, 0f);
        VecMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertEquals(1f, y[0]);
    }

    @Test
    void doubleExpMatchesMathExp() {
        var S = DoubleVector.SPECIES_PREFERRED;
        double[] x = new double[S.length()], y = new double[S.length()];
        double worst = 0;
        for (double v = -700; v < 700; v += 0.731) {
            for (int i = 0; i < x.length; i++) x[i] = v + i * 0.01;
            VecMath.exp(DoubleVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i] / Math.exp(x[i]) - 1));
        }
        assertTrue(worst < 1e-14, "relative error " + worst);
        java.util.Arrays.fill(x, -1000);
        VecMath.exp(DoubleVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertEquals(0.0, y[0]);
    }

    /**
     * The lane sum's fixed tree (lane i plus lane i ^ h, h = L/2 .. 1), computed here lane by lane, bit for bit against
     * {@code sum} and against {@code expShiftSum}, which writes the same tree out inline (see its comment).
     */
    @Test
    void laneSumsFollowTheFixedTree() {
        var S = FloatVector.SPECIES_PREFERRED;
        int L = S.length(), n = 5 * L + 3;
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * 4);
        float[] lanes = java.util.Arrays.copyOf(x, L);
        assertEquals(Float.floatToRawIntBits(tree(lanes.clone())), Float.floatToRawIntBits(VecMath.sum(FloatVector.fromArray(S, lanes, 0))));

        float shift = 1.5f;
        float[] e = x.clone();
        float got = VecMath.expShiftSum(e, 0, n, shift);
        float[] acc = new float[L];
        int full = n / L * L;
        for (int i = 0; i < full; i++) acc[i % L] += e[i]; // the vector accumulator, lane by lane, in order
        float want = tree(acc);
        for (int i = full; i < n; i++) want += e[i];
        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got), want + " vs " + got);
    }

    /** v[i] += v[i ^ h] for all lanes at once, h = L/2 down to 1; lane 0. */
    private static float tree(float[] v) {
        for (int h = v.length / 2; h > 0; h /= 2) {
            float[] w = v.clone();
            for (int i = 0; i < v.length; i++) v[i] = w[i] + w[i ^ h];
        }
        return v[0];
    }
}
