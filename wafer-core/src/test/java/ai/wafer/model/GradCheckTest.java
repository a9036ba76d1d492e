package ai.wafer.model;

import ai.wafer.tensor.Activation;
import ai.wafer.tensor.Kernels;
import ai.wafer.tensor.Weights;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.Random;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finite-difference checks of every layer's backward, on odd sizes (not multiples of the vector
 * width). Each layer's output is reduced to a scalar L = sum(out * R) with a fixed random R, so
 * dL/dout = R; the analytic gradient from backward is compared with central differences of L.
 */
class GradCheckTest {
    private static final Random RNG = new Random(7);

    static float[] rand(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (RNG.nextGaussian() * scale);
        return a;
    }

    static double dot(float[] a, float[] b, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double) a[i] * b[i];
        return s;
    }

    static void check(String what, float[] x, float[] analytic, DoubleSupplier loss, double h, double tol) {
        ai.wafer.testutil.FiniteDifference.check(what, x, analytic, loss, h, tol, 1, false);
    }

    /** A trainable parameter over {@code values} itself (not a copy), so that the finite differences move it. */
    static Parameter trainable(float[] values) {
        Parameter p = new Parameter("p", new int[] {values.length}, values);
        p.setTrainable(true);
        return p;
    }

    @Test
    void layerNorm() {
        int N = 5, C = 13;
        float[] x = rand(N * C, 1), w = rand(C, 1), b = rand(C, 1), r = rand(N * C, 1);
        float[] out = new float[N * C], mean = new float[N], rstd = new float[N];
        // the gain and bias at offsets 3 and 5 of their arrays, as slices of a flat store are
        float[] ws = new float[C + 3], bs = new float[C + 5], dws = new float[C + 3], dbs = new float[C + 5];
        DoubleSupplier L = () -> {
            System.arraycopy(w, 0, ws, 3, C);
            System.arraycopy(b, 0, bs, 5, C);
            Kernels.JAVA.layerNorm(out, mean, rstd, x, ws, 3, bs, 5, N, C, 1e-5f);
            return dot(out, r, N * C);
        };
        L.getAsDouble();
        float[] dx = new float[N * C];
        Kernels.JAVA.layerNormBackward(dx, r, x, ws, dws, 3, dbs, 5, mean, rstd, N, C, new float[ai.wafer.tensor.Parallel.threads() * 2 * C]);
        float[] dw = Arrays.copyOfRange(dws, 3, C + 3), db = Arrays.copyOfRange(dbs, 5, C + 5);
        check("layernorm dx", x, dx, L, 1e-2, 2e-2);
        check("layernorm dw", w, dw, L, 1e-2, 2e-2);
        check("layernorm db", b, db, L, 1e-2, 2e-2);
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void activation(Activation act) {
        int n = 37;
        float[] x = rand(n, 2), r = rand(n, 1), out = new float[n];
        if (act == Activation.RELU) for (int i = 0; i < n; i++) if (Math.abs(x[i]) < 0.05f) x[i] = 0.5f; // kink
        DoubleSupplier L = () -> { Kernels.JAVA.activation(act, out, x, null, n); return dot(out, r, n); };
        float[] dx = new float[n], slope = new float[n], out2 = new float[n];
        Kernels.JAVA.activation(act, out2, x, slope, n); // the training forward: the slope kept for the backward
        Kernels.JAVA.activationBackward(dx, slope, r, n);
        check(act + " dx", x, dx, L, 1e-2, 2e-2);
    }

    @Test
    void linear() {
        int N = 7, C = 11, OC = 9;
        float[] x = rand(N * C, 1), w = rand(C * OC, 0.5), b = rand(OC, 1), r = rand(N * OC, 1), out = new float[N * OC];
        Parameter pw = trainable(w), pb = trainable(b);
        DoubleSupplier L = () -> { Linear.forward(out, x, pw, pb, N, C, OC); return dot(out, r, N * OC); };
        float[] dx = new float[N * C];
        Linear.backward(dx, false, r, x, pw, pb, N, C, OC);
        float[] dw = pw.grad(), db = pb.grad();
        check("linear dx", x, dx, L, 1e-2, 1e-2);
        check("linear dw", w, dw, L, 1e-2, 1e-2);
        check("linear db", b, db, L, 1e-2, 1e-2);
    }

    @Test
    void attention() {
        int B = 2, T = 5, C = 6, H = 2;
        float scale = 1f / 3; // µP's 1/d_head (the left-padded case below takes 1/sqrt(d_head))
        float[] qkv = rand(B * T * 3 * C, 1), r = rand(B * T * C, 1), out = new float[B * T * C], att = new float[B * H * T * T];
        DoubleSupplier L = () -> { Kernels.JAVA.attention(out, att, qkv, B, T, C, H, scale, null); return dot(out, r, B * T * C); };
        L.getAsDouble();
        float[] dqkv = new float[qkv.length];
        Kernels.JAVA.attentionBackward(dqkv, r, qkv, att, B, T, C, H, scale, new float[ai.wafer.tensor.Parallel.threads() * T * T], null);
        check("attention dqkv", qkv, dqkv, L, 1e-2, 2e-2);
    }

    /**
     * Left padding: rows start at 0, 2 and 5 of T = 6. The gradient is checked by finite differences, and the pads'
     * outputs and gradients are exactly zero (a pad feeds nothing, whatever its q, k and v).
     */
    @Test
    void attentionLeftPadded() {
        int B = 3, T = 6, C = 6, H = 2;
        int[] start = {0, 2, 5};
        float scale = (float) (1 / Math.sqrt(3));
        float[] qkv = rand(B * T * 3 * C, 1), r = rand(B * T * C, 1), out = new float[B * T * C], att = new float[B * H * T * T];
        DoubleSupplier L = () -> { Kernels.JAVA.attention(out, att, qkv, B, T, C, H, scale, start); return dot(out, r, B * T * C); };
        L.getAsDouble();
        float[] dqkv = new float[qkv.length];
        Arrays.fill(dqkv, Float.NaN); // stale values must be overwritten, pads included
        Kernels.JAVA.attentionBackward(dqkv, r, qkv, att, B, T, C, H, scale, new float[ai.wafer.tensor.Parallel.threads() * T * T], start);
        check("attention left-padded dqkv", qkv, dqkv, L, 1e-2, 2e-2);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < start[b]; t++) {
                for (int c = 0; c < C; c++) assertTrue(out[(b * T + t) * C + c] == 0f, "pad output");
                for (int c = 0; c < 3 * C; c++) assertTrue(dqkv[(b * T + t) * 3 * C + c] == 0f, "pad gradient " + b + "," + t);
            }
    }

    /**
     * Attention in several query tiles: T = 2 tiles + 3 rows (odd, the last tile ragged), rows starting at 0, 61 and
     * 130 (a real block of 131, 70 and 1 rows), att filled with NaN first (what the kernels leave unwritten they
     * must not read). The output against a float64 evaluation of softmax(scale q k^T) v over each row's real past,
     * the gradient by finite differences on every 7th element.
     */
    @Test
    void attentionTiledLeftPadded() {
        int B = 3, T = 2 * ai.wafer.tensor.Attention.TILE + 3, C = 8, H = 2, hs = C / H;
        int[] start = {0, 61, 130};
        float scale = (float) (1 / Math.sqrt(hs));
        float[] qkv = rand(B * T * 3 * C, 1), r = rand(B * T * C, 1), out = new float[B * T * C], att = new float[B * H * T * T];
        Arrays.fill(att, Float.NaN);
        DoubleSupplier L = () -> { Kernels.JAVA.attention(out, att, qkv, B, T, C, H, scale, start); return dot(out, r, B * T * C); };
        L.getAsDouble();
        double worst = 0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int t = start[b]; t < T; t++) {
                    int q = (b * T + t) * 3 * C + h * hs;
                    double[] p = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = start[b]; j <= t; j++) {
                        int k = (b * T + j) * 3 * C + C + h * hs;
                        for (int d = 0; d < hs; d++) p[j] += (double) qkv[q + d] * qkv[k + d];
                        p[j] *= scale;
                        max = Math.max(max, p[j]);
                    }
                    for (int j = start[b]; j <= t; j++) sum += p[j] = Math.exp(p[j] - max);
                    for (int d = 0; d < hs; d++) {
                        double o = 0;
                        for (int j = start[b]; j <= t; j++) o += p[j] / sum * qkv[(b * T + j) * 3 * C + 2 * C + h * hs + d];
                        worst = Math.max(worst, Math.abs(out[(b * T + t) * C + h * hs + d] - o));
                    }
                }
        assertTrue(worst < 1e-5, "attention output differs from float64 by " + worst);
        float[] dqkv = new float[qkv.length];
        Arrays.fill(dqkv, Float.NaN);
        Kernels.JAVA.attentionBackward(dqkv, r, qkv, att, B, T, C, H, scale, new float[ai.wafer.tensor.Parallel.threads() * T * T], start);
        ai.wafer.testutil.FiniteDifference.check("attention tiled dqkv", qkv, dqkv, L, 1e-2, 2e-2, 7, false);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < start[b]; t++) {
                for (int c = 0; c < C; c++) assertTrue(out[(b * T + t) * C + c] == 0f, "pad output");
                for (int c = 0; c < 3 * C; c++) assertTrue(dqkv[(b * T + t) * 3 * C + c] == 0f, "pad gradient " + b + "," + t);
            }
    }

    @Test
    void encoder() {
        int B = 2, T = 3, C = 5, V = 7;
        int[] tok = {1, 4, 1, 6, 0, 4};
        float[] wte = rand(V * C, 1), wpe = rand(T * C, 1), r = rand(B * T * C, 1), out = new float[B * T * C];
        DoubleSupplier L = () -> { Encoder.forward(out, tok, 0, Weights.of(wte), Weights.of(wpe), B, T, C, 0, null, null); return dot(out, r, B * T * C); };
        Parameter pte = trainable(wte), ppe = trainable(wpe);
        Encoder.backward(pte, ppe, r, tok, 0, B, T, C, null);
        float[] dwte = pte.grad(), dwpe = ppe.grad();
        check("encoder dwte", wte, dwte, L, 1e-2, 1e-2);
        check("encoder dwpe", wpe, dwpe, L, 1e-2, 1e-2);
    }

    @Test
    void encoderLeftPadded() {
        int B = 2, T = 3, C = 5, V = 7;
        int[] tok = {1, 4, 1, 6, 0, 4}, start = {1, 0};
        float[] wte = rand(V * C, 1), wpe = rand(T * C, 1), r = rand(B * T * C, 1), out = new float[B * T * C];
        DoubleSupplier L = () -> { Encoder.forward(out, tok, 0, Weights.of(wte), Weights.of(wpe), B, T, C, 0, start, null); return dot(out, r, B * T * C); };
        L.getAsDouble();
        // row 0's tokens 4, 1 sit at positions 0, 1 (its pad at 0 too)
        for (int c = 0; c < C; c++) assertTrue(out[C + c] == wte[4 * C + c] + wpe[c] && out[2 * C + c] == wte[C + c] + wpe[C + c]);
        Parameter pte = trainable(wte), ppe = trainable(wpe);
        Encoder.backward(pte, ppe, r, tok, 0, B, T, C, start);
        float[] dwte = pte.grad(), dwpe = ppe.grad();
        check("encoder left-padded dwte", wte, dwte, L, 1e-2, 1e-2);
        check("encoder left-padded dwpe", wpe, dwpe, L, 1e-2, 1e-2);
    }

    @Test
    void crossEntropy() {
        int N = 3, V = 19;
        int[] tgt = {4, -100, 18};
        float[] logits = rand(N * V, 2), work = new float[N * V], losses = new float[N];
        DoubleSupplier L = () -> { System.arraycopy(logits, 0, work, 0, N * V); return CrossEntropy.forward(work, losses, tgt, N, V) / 2; };
        L.getAsDouble();
        CrossEntropy.backward(work, tgt, N, V, 0, 0.5f);
        for (int v = 0; v < V; v++) assertTrue(work[V + v] == 0f, "ignored row has zero gradient");
        check("cross-entropy dlogits", logits, work.clone(), L, 1e-2, 1e-2);
    }

    /** ReLU's kink defeats finite differences through a whole model; its layer test above covers it. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"GELU, true, false", "GELU_TANH, false, false", "GELU, true, true", "GELU, false, true"})
    void wholeModel(Activation act, boolean tied, boolean mup) {
        // tiny matrices: on a busy machine the thread team's hand-offs cost far more than the work (seconds vs minutes)
        ai.wafer.tensor.Parallel.runSerially(() -> wholeModelSerial(act, tied, mup));
    }

    private void wholeModelSerial(Activation act, boolean tied, boolean mup) {
        // odd everything: C=10 (2 heads of 5), F=23, V=29, T=7; µP with factors far from 1 (scores by d_head,
        // embeddings times 2.5, logits times 1.7 * 0.4), so a missing factor in any backward shows
        GptConfig cfg = new GptConfig(29, 9, 10, 2, 2, 23, act, 1e-5f, true, tied, 0.02f, java.util.Map.of(),
                mup ? new MuP(2.5, 1.7, 0.4, true) : MuP.NONE);
        Gpt m = Gpt.init(cfg, 3);
        for (Parameter p : m.parameters()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (RNG.nextGaussian() * 0.3);
        int B = 2, T = 7;
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) { x[i] = RNG.nextInt(29); y[i] = RNG.nextInt(29); }
        y[3] = -100;
        m.zeroGrad();
        m.forward(x, y, B, T);
        m.backward();
        DoubleSupplier L = () -> {
            m.forward(x, y, B, T);
            double s = 0;
            for (int i = 0; i < B * T; i++) s += m.activations().losses[i];
            return s / (B * T - 1);
        };
        for (Parameter p : m.parameters()) {
            float[] g = p.gradArray().clone();
            if (p.name.equals("h.0.attn.c_attn.bias") || p.name.equals("h.1.attn.c_attn.bias")) {
                // key bias: exactly zero by softmax shift invariance (see Gpt.backward); check q and v parts
                for (int i = 10; i < 20; i++) assertTrue(g[i] == 0f);
            }
            check("model " + act + (mup ? " µP " : " ") + p.name, p.data, g, L, 5e-3, 3e-2);
        }
        assertTrue(Arrays.stream(m.parameters().toArray(Parameter[]::new)).allMatch(Parameter::trainable));
    }
}
