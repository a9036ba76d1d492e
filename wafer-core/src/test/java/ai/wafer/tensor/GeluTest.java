package ai.wafer.tensor;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.List;

import static ai.wafer.testutil.Fixtures.fixture;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GELU's float lanes against float64 values (tools/make_gelu_reference.py: Python's math.erfc, the tanh form by
 * its definition) at 339 float32 points in [-12, 12], through the kernels' tails too (the count is not a multiple
 * of the vector width).
 */
class GeluTest {
    @Test
    void matchesFloat64Reference() throws IOException {
        List<String> lines = Files.readAllLines(fixture("gelu").resolve("reference.csv"));
        int n = lines.size() - 1;
        float[] x = new float[n], ones = new float[n], out = new float[n], d = new float[n];
        double[][] ref = new double[n][];
        for (int i = 0; i < n; i++) {
            String[] f = lines.get(i + 1).split(",");
            ref[i] = new double[f.length];
            for (int j = 0; j < f.length; j++) ref[i][j] = Double.parseDouble(f[j]);
            x[i] = (float) ref[i][0];
            ones[i] = 1f;
        }
        // exact: forward relative to |gelu| (x Phi(x), so relative even where Phi is 1e-33), the derivative
        // Phi + x pdf relative to the size of its two terms (it crosses zero near x = -0.75)
        float[] slope = new float[n];
        Gelu.forward(Activation.GELU, out, x, slope, n); // training's forward: the slope kept for the backward
        Gelu.backward(d, slope, ones, n);
        double worstF = 0, worstB = 0;
        for (int i = 0; i < n; i++) {
            double xi = x[i], pdf = Math.exp(-xi * xi / 2) / Math.sqrt(2 * Math.PI);
            worstF = Math.max(worstF, Math.abs(out[i] - ref[i][2]) / Math.max(Math.abs(ref[i][2]), 1e-37));
            worstB = Math.max(worstB, Math.abs(d[i] - ref[i][3]) / (ref[i][1] + Math.abs(xi) * pdf));
        }
        assertTrue(worstF < 1e-6 && worstB < 1e-6, "exact GELU: relative error forward " + worstF + ", backward " + worstB);
        // huge inputs (a diverged run) stay finite: GELU is x or 0 there, its derivative 1 or 0
        float[] big = {1e20f, -1e20f, 3e38f}, bo = new float[3], bd = new float[3];
        float[] bs = new float[3];
        Gelu.forward(Activation.GELU, bo, big, bs, 3);
        Gelu.backward(bd, bs, new float[] {1, 1, 1}, 3);
        assertTrue(bo[0] == 1e20f && bo[1] == 0f && bo[2] == 3e38f && bd[0] == 1f && bd[1] == 0f && bd[2] == 1f,
                java.util.Arrays.toString(bo) + " " + java.util.Arrays.toString(bd));
        // tanh form: relative to |value|, to |s| + |x s'| for the derivative (s = (1 + tanh u) / 2); its exp(-2u) rounds
        // u = sqrt(2/pi) (x + 0.044715 x^3) to float, so where |u| > 1 the bound is 1e-6 |u| (1e-25 values at x = -9)
        Gelu.forward(Activation.GELU_TANH, out, x, slope, n);
        Gelu.backward(d, slope, ones, n);
        for (int i = 0; i < n; i++) {
            double xi = x[i], s = xi == 0 ? 0.5 : ref[i][4] / xi, ds = ref[i][5] - s;
            double tol = 1e-6 * Math.max(1, Math.abs(Math.sqrt(2 / Math.PI) * (xi + 0.044715 * xi * xi * xi)));
            double ef = Math.abs(out[i] - ref[i][4]) / Math.max(Math.abs(ref[i][4]), 1e-30);
            double eb = Math.abs(d[i] - ref[i][5]) / Math.max(Math.abs(s) + Math.abs(ds), 1e-30);
            assertTrue(ef < tol && eb < tol, "tanh GELU at " + xi + ": relative error forward " + ef + ", backward " + eb);
        }
    }

    /**
     * Training keeps the slope in the input's buffer (Gpt's fch, the adapter's pre-activation): with slope == inp every
     * activation gives the outputs and slopes it gives into separate arrays, and inference (no slope) the same outputs.
     */
    @Test
    void theSlopeMayReplaceTheInput() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        int n = 3 * 1024 + 37; // several blocks of the exact form, and a masked tail
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * 3);
        for (Activation act : Activation.values()) {
            float[] out = new float[n], slope = new float[n], plain = new float[n], alias = new float[n], inPlace = x.clone();
            Gelu.forward(act, out, x, slope, n);
            Gelu.forward(act, plain, x, null, n);
            Gelu.forward(act, alias, inPlace, inPlace, n);
            for (int i = 0; i < n; i++) {
                assertTrue(out[i] == plain[i] && out[i] == alias[i], act + " out " + i);
                assertTrue(Float.floatToRawIntBits(slope[i]) == Float.floatToRawIntBits(inPlace[i]), act + " slope " + i);
            }
        }
    }
}
