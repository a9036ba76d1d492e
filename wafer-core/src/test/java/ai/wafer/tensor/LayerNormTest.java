package ai.wafer.tensor;

import ai.wafer.testutil.FiniteDifference;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * LayerNorm's vector lanes against float64: the forward and its saved statistics against a float64 LayerNorm, the
 * backward (input, weight and bias gradients) against central finite differences of a float64 loss through the
 * float64 forward. C = 77 and 768: odd widths reach the scalar tails; N = 37 rows split unevenly over the threads.
 */
class LayerNormTest {
    private static final float EPS = 1e-5f;

    @Test
    void forwardMatchesFloat64() {
        for (int C : new int[] {77, 768}) {
            Random r = new Random(C);
            int N = 37;
            float[] x = gauss(r, N * C, 3f, 1.5f), w = gauss(r, 5 + C, 1f, 0.2f), b = gauss(r, 3 + C, 0.5f, 0f);
            float[] out = new float[N * C], mean = new float[N], rstd = new float[N];
            LayerNorm.forward(out, mean, rstd, x, w, 5, b, 3, N, C, EPS);
            double[] m = new double[N], rs = new double[N], ref = reference(x, w, 5, b, 3, N, C, m, rs);
            for (int i = 0; i < N; i++) {
                assertEquals(m[i], mean[i], 1e-6 * (Math.abs(m[i]) + 1), "mean of row " + i);
                assertEquals(rs[i], rstd[i], 1e-6 * rs[i], "rstd of row " + i);
                for (int c = 0; c < C; c++)
                    assertEquals(ref[i * C + c], out[i * C + c], 2e-6 * (Math.abs(ref[i * C + c]) + 1), "C=" + C + " out[" + i + "," + c + "]");
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        for (int C : new int[] {77, 768}) {
            Random r = new Random(100 + C);
            int N = 37;
            float[] x = gauss(r, N * C, 1f, 1.2f), w = gauss(r, C, 1f, 0.3f), b = gauss(r, C, 0f, 0.3f), g = gauss(r, N * C, 0f, 1f);
            // loss = sum(g * LayerNorm(x)) in float64; the kernel's gradients of it, dinp accumulating onto a nonzero start
            float[] out = new float[N * C], mean = new float[N], rstd = new float[N];
            LayerNorm.forward(out, mean, rstd, x, w, 0, b, 0, N, C, EPS);
            float[] start = gauss(r, N * C, 0f, 1f), dinp = start.clone(), dw = new float[C], db = new float[C];
            LayerNorm.backward(dinp, g, x, w, dw, 0, db, 0, mean, rstd, N, C, new float[Parallel.threads() * 2 * C]);
            float[] dx = new float[N * C];
            for (int i = 0; i < dx.length; i++) dx[i] = dinp[i] - start[i];
            java.util.function.DoubleSupplier loss = () -> loss(x, w, b, g, N, C);
            FiniteDifference.check("C=" + C + " dinp", x, dx, loss, 1e-2, 2e-3, 7, false);
            FiniteDifference.check("C=" + C + " dw", w, dw, loss, 1e-2, 2e-3, 3, false);
            FiniteDifference.check("C=" + C + " db", b, db, loss, 1e-2, 2e-3, 3, false);
        }
    }

    /** sum(g * LayerNorm(x)) in float64. */
    private static double loss(float[] x, float[] w, float[] b, float[] g, int N, int C) {
        double[] y = reference(x, w, 0, b, 0, N, C, new double[N], new double[N]);
        double s = 0;
        for (int i = 0; i < y.length; i++) s += g[i] * y[i];
        return s;
    }

    /** LayerNorm in float64 (w at wo, b at bo); each row's mean and 1 / std into mean and rstd. */
    private static double[] reference(float[] x, float[] w, int wo, float[] b, int bo, int N, int C, double[] mean, double[] rstd) {
        double[] y = new double[N * C];
        for (int i = 0; i < N; i++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += x[i * C + c];
            m /= C;
            for (int c = 0; c < C; c++) v += (x[i * C + c] - m) * (x[i * C + c] - m);
            double rs = 1 / Math.sqrt(v / C + EPS);
            for (int c = 0; c < C; c++) y[i * C + c] = (x[i * C + c] - m) * rs * w[wo + c] + b[bo + c];
            mean[i] = m;
            rstd[i] = rs;
        }
        return y;
    }

    private static float[] gauss(Random r, int n, float mean, float sd) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = mean + sd * (float) r.nextGaussian();
        return a;
    }
}
