package ai.wafer.model;

import ai.wafer.tensor.Activation;
import ai.wafer.testutil.FiniteDifference;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Left padding as a per-row start: a left-padded row must give what the same row gives unpadded (logits, loss,
 * gradients), and its pads must feed nothing. Odd sizes (C = 10 in 2 heads of 5, V = 29), an untied head so that
 * the pad token's embedding row is touched by the pads alone.
 */
class LeftPaddingTest {
    static final GptConfig CFG = new GptConfig(29, 12, 10, 2, 2, 23, Activation.GELU, 1e-5f, true, false, 0.02f, Map.of());
    static final int PAD = 28, V = 29;
    // row 0: 4 real tokens behind 3 pads; row 1: 7 real tokens
    static final int[] A = {3, 9, 4, 17}, B = {5, 6, 7, 8, 1, 2, 3}, START = {3, 0};
    static final int T = 7;

    static Gpt model() {
        Gpt m = Gpt.init(CFG, 3);
        Random r = new Random(5);
        for (Parameter p : m.parameters()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (r.nextGaussian() * 0.3);
        return m;
    }

    /** Next-token targets of a row: its own tokens shifted by one, the last one ignored. */
    static int[] targets(int[] x) {
        int[] y = new int[x.length];
        for (int t = 0; t < x.length; t++) y[t] = t + 1 < x.length ? x[t + 1] : -100;
        return y;
    }

    /** The two rows left-padded into one [2, 7] batch with pad token {@code pad}; pad targets are ignored. */
    static int[][] batch(int pad) {
        int[] x = new int[2 * T], y = new int[2 * T];
        Arrays.fill(x, pad);
        Arrays.fill(y, -100);
        System.arraycopy(A, 0, x, START[0], A.length);
        System.arraycopy(targets(A), 0, y, START[0], A.length);
        System.arraycopy(B, 0, x, T, B.length);
        System.arraycopy(targets(B), 0, y, T, B.length);
        return new int[][] {x, y};
    }

    static double lossSum(Gpt m) {
        double s = 0;
        Activations a = m.activations();
        for (int i = 0; i < a.B * a.T; i++) if (!CrossEntropy.ignored(a.targets[i])) s += a.losses[i];
        return s;
    }

    @Test
    void aLeftPaddedRowGivesWhatItGivesUnpadded() {
        Gpt m = model();
        m.forward(A, null, 1, A.length);
        float[] alone = Arrays.copyOf(m.activations().logits, A.length * V);
        m.forward(B, null, 1, B.length);
        float[] aloneB = Arrays.copyOf(m.activations().logits, B.length * V);
        int[][] xy = batch(PAD);
        m.forward(xy[0], null, START, 2, T);
        float[] padded = m.activations().logits;
        assertArrayEquals(alone, Arrays.copyOfRange(padded, START[0] * V, T * V), 1e-5f, "left-padded row's logits");
        assertArrayEquals(aloneB, Arrays.copyOfRange(padded, T * V, 2 * T * V), 1e-5f, "the unpadded row beside it");
        // without the start the pads are read as text, and the row's logits move: the test can tell
        m.forward(xy[0], null, 2, T);
        float[] unmasked = Arrays.copyOfRange(m.activations().logits, START[0] * V, T * V);
        assertTrue(maxDiff(alone, unmasked) > 1e-3, "ignoring the padding should change the logits");

        // the mean loss over the batch is the mean over both rows' tokens
        m.forward(A, targets(A), 1, A.length);
        double sA = lossSum(m);
        m.forward(B, targets(B), 1, B.length);
        double sB = lossSum(m);
        float mean = m.forward(xy[0], xy[1], START, 2, T);
        assertEquals((sA + sB) / (A.length - 1 + B.length - 1), mean, 1e-5);
    }

    @Test
    void padsNeverContribute() {
        Gpt m = model();
        int[][] xy = batch(PAD);
        m.forward(xy[0], xy[1], START, 2, T);
        float[] ref = Arrays.copyOfRange(m.activations().losses, START[0], 2 * T);
        // another pad token changes no real token's loss, bit for bit
        int[][] other = batch(11);
        m.forward(other[0], other[1], START, 2, T);
        assertArrayEquals(ref, Arrays.copyOfRange(m.activations().losses, START[0], 2 * T));

        m.zeroGrad();
        m.forward(xy[0], xy[1], START, 2, T);
        m.backward(1f);
        // dres now holds the gradient of the embeddings' output: zero at every pad position
        float[] dx = m.activations().dres;
        int C = CFG.nEmbd();
        for (int t = 0; t < START[0]; t++) for (int c = 0; c < C; c++) assertEquals(0f, dx[t * C + c], "pad " + t);
        for (int c = 0; c < C; c++) assertEquals(0f, m.wte.grad()[PAD * C + c], "the pad token's embedding");
        assertTrue(maxDiff(new float[C], Arrays.copyOfRange(dx, START[0] * C, (START[0] + 1) * C)) > 0, "real tokens get a gradient");
    }

    /** Gradients of the padded batch's summed loss equal the sums of the rows' own gradients, unpadded. */
    @Test
    void gradientsMatchTheUnpaddedRows() {
        Gpt m = model();
        m.zeroGrad();
        m.forward(A, targets(A), 1, A.length);
        m.backward(1f);
        m.forward(B, targets(B), 1, B.length);
        m.backward(1f);
        float[][] alone = m.parameters().stream().map(p -> p.gradArray().clone()).toArray(float[][]::new);
        m.zeroGrad();
        int[][] xy = batch(PAD);
        m.forward(xy[0], xy[1], START, 2, T);
        m.backward(1f);
        for (int i = 0; i < alone.length; i++) {
            Parameter p = m.parameters().get(i);
            assertArrayEquals(alone[i], p.gradArray(), 1e-4f, p.name);
        }
    }

    @Test
    void finiteDifferencesThroughTheWholeModel() {
        Gpt m = model();
        int[][] xy = batch(PAD);
        ai.wafer.tensor.Parallel.runSerially(() -> {
            m.zeroGrad();
            m.forward(xy[0], xy[1], START, 2, T);
            m.backward();
            java.util.function.DoubleSupplier L = () -> m.forward(xy[0], xy[1], START, 2, T);
            for (Parameter p : m.parameters()) {
                float[] g = p.gradArray().clone();
                if (p.name.endsWith("attn.c_attn.bias")) for (int i = 10; i < 20; i++) g[i] = Float.NaN; // key bias: held at zero
                FiniteDifference.check("left-padded " + p.name, p.data, g, L, 5e-3, 3e-2, 1, true);
            }
        });
    }

    private static double maxDiff(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        return d;
    }
}
