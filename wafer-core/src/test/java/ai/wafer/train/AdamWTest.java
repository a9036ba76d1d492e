package ai.wafer.train;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * AdamW's vectorised update against the scalar definition, bit for bit: at offsets, on lengths that leave tails, with
 * and without decay and clipping, and the bf16 rounding it writes for the next pass. (The update itself is checked against PyTorch in GptReferenceTest.)
 */
class AdamWTest {
    @Test
    void theVectorUpdateIsTheScalarOneBitForBit() {
        SplittableRandom r = new SplittableRandom(3);
        AdamW.Hyper hp = new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f);
        for (int n : new int[] {1, 7, 16, 33, 1000, 4099}) {
            for (boolean decays : new boolean[] {true, false}) {
                int wo = 5, go = 11, mo = 3;
                float[] w = rand(r, n + wo), g = rand(r, n + go), m = rand(r, n + mo), v = abs(rand(r, n + mo));
                float[] w2 = w.clone(), m2 = m.clone(), v2 = v.clone();
                short[] bits = new short[n];
                for (long step = 1; step <= 3; step++) {
                    AdamW.update(w, wo, g, go, m, v, mo, n, 3e-3f, decays, 0.7f, hp, step, step == 3 ? bits : null);
                    scalar(w2, wo, g, go, m2, v2, mo, n, 3e-3f, decays, 0.7f, hp, step);
                }
                for (int i = 0; i < n + wo; i++) assertEquals(Float.floatToRawIntBits(w2[i]), Float.floatToRawIntBits(w[i]), "w " + n + " " + i);
                for (int i = 0; i < n; i++) // the bf16 copy for the next pass: the new weights, rounded
                    assertEquals(ai.wafer.tensor.Bf16Weights.toBf16(w2[wo + i]), bits[i], "bf16 " + n + " " + i);
                for (int i = 0; i < n + mo; i++) {
                    assertEquals(Float.floatToRawIntBits(m2[i]), Float.floatToRawIntBits(m[i]), "m " + n + " " + i);
                    assertEquals(Float.floatToRawIntBits(v2[i]), Float.floatToRawIntBits(v[i]), "v " + n + " " + i);
                }
            }
        }
    }

    /**
     * PyTorch's single-tensor AdamW, one element at a time, in its precision: float tensors, the bias corrections as
     * Python floats (double) made float where they meet a tensor.
     */
    private static void scalar(float[] w, int wo, float[] g, int go, float[] m, float[] v, int mo, int n, float lr, boolean decays,
                               float gscale, AdamW.Hyper hp, long step) {
        float b1 = hp.beta1(), b2 = hp.beta2();
        double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
        float decay = decays ? 1f - lr * hp.weightDecay() : 1f;
        for (int i = 0; i < n; i++) {
            float gj = g[go + i] * gscale;
            float mj = b1 * m[mo + i] + (1 - b1) * gj;
            float vj = b2 * v[mo + i] + (1 - b2) * gj * gj;
            m[mo + i] = mj;
            v[mo + i] = vj;
            float denom = (float) Math.sqrt(vj) / (float) Math.sqrt(bc2) + hp.eps(); // exp_avg_sq.sqrt() / bias_correction2_sqrt + eps
            w[wo + i] = w[wo + i] * decay - mj * (float) (lr / bc1) / denom;          // param.addcdiv_(exp_avg, denom, value=-step_size)
        }
    }

    private static float[] rand(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    private static float[] abs(float[] a) {
        for (int i = 0; i < a.length; i++) a[i] = Math.abs(a[i]);
        return a;
    }

    /** The squared gradient sum (clipping's norm): the double sum, and the same bits on one thread as on the team. */
    @Test
    void squaredSumIsTheDoubleSumOnAnyNumberOfThreads() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : new int[] {0, 1, 15, 16, 17, 16384, 16385, 100_003}) {
            float[] g = new float[n + 5];
            for (int j = 0; j < g.length; j++) g[j] = (float) r.nextGaussian() * (j % 7 == 0 ? 1e3f : 1e-3f);
            double want = 0;
            for (int j = 5; j < n + 5; j++) want += (double) g[j] * g[j];
            double team = AdamW.squaredSum(g, 5, n);
            assertEquals(want, team, 1e-12 * want, "n " + n);
            double[] one = new double[1];
            ai.wafer.tensor.Parallel.runSerially(() -> one[0] = AdamW.squaredSum(g, 5, n));
            assertEquals(team, one[0], 0.0, "n " + n + " on one thread");
        }
    }
}
