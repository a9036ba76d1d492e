package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Causal multi-head self-attention on the packed c_attn output qkv[B,T,3C] (q, k, v side by
 * side, each split into H heads of size hs). One (batch, head) pair is one task: its matmuls are
 * small, so they run serially inside the parallel loop over pairs.
 *
 * <p>The softmax probabilities att[B,H,T,T] are kept for the backward pass (zero above the diagonal).
 * Left padding is a per-row count of leading pads, not a [B,T,T] mask: see {@link #forward}.
 */
public final class Attention {
    private Attention() {}

    /**
     * Scores are {@code scale} q.k ({@link GptConfig#attnScale}). Left padding: row b's real tokens start at
     * {@code start[b]} (null: every row starts at 0). A real token attends only to the real tokens up to itself,
     * so a left-padded row computes exactly what the same row unpadded computes, on the [T-s, T-s] block below and
     * right of its s pads; the pads' outputs (and their probability rows and columns) are zero, so nothing flows
     * through them. With start null or all zero this is the plain causal path, call for call.
     */
    public static void forward(float[] out, float[] att, float[] qkv, int B, int T, int C, int H, float scale, int[] start) {
        int hs = C / H, C3 = 3 * C;
        Parallel.forRange(B * H, (w, from, to) -> {
            for (int bh = from; bh < to; bh++) {
                int b = bh / H, h = bh % H, s = start == null ? 0 : start[b], n = T - s;
                int q = b * T * C3 + h * hs, k = q + C, v = q + 2 * C, a = bh * T * T, o = b * T * C + h * hs;
                if (s > 0) {
                    Arrays.fill(att, a, a + s * T, 0f);
                    for (int t = s; t < T; t++) Arrays.fill(att, a + t * T, a + t * T + s, 0f);
                    for (int t = 0; t < s; t++) Arrays.fill(out, o + t * C, o + t * C + hs, 0f);
                    if (n == 0) continue;
                    q += s * C3; k += s * C3; v += s * C3; a += s * T + s; o += s * C;
                }
                Gemm.sgemmSerial(false, true, n, n, hs, scale, qkv, q, C3, qkv, k, C3, 0f, att, a, T);
                for (int t = 0; t < n; t++) {
                    int r = a + t * T;
                    softmax(att, r, t + 1);
                    Arrays.fill(att, r + t + 1, r + n, 0f);
                }
                Gemm.sgemmSerial(false, false, n, hs, n, 1f, att, a, T, qkv, v, C3, 0f, out, o, C);
            }
        });
    }

    /**
     * The cached forward of one head for a chunk of T new positions p0..p0+T-1 (prefill): their queries
     * q[t * ldq + qOff, +hs) attend causally to the P = p0 + T positions in the cache (keys and values of the head
     * at k/v[base + p * hs, +hs), the new ones already stored), as two GEMMs: S = scale Q K^T over all P positions, a
     * softmax of each row's first p0 + t + 1 scores (the training softmax), and out[t * ldo + oOff, +hs) = S V.
     * {@code scores} holds at least T * P floats. Runs on the calling thread (callers split heads over threads).
     */
    public static void forwardCached(float[] out, int oOff, int ldo, float[] q, int qOff, int ldq, float[] k, float[] v,
                                     int base, int hs, int p0, int T, float scale, float[] scores) {
        int P = p0 + T;
        Gemm.sgemmSerial(false, true, T, P, hs, scale, q, qOff, ldq, k, base, hs, 0f, scores, 0, P);
        for (int t = 0; t < T; t++) {
            int r = t * P, n = p0 + t + 1;
            softmax(scores, r, n);
            Arrays.fill(scores, r + n, r + P, 0f);
        }
        Gemm.sgemmSerial(false, false, T, hs, P, 1f, scores, 0, P, v, base, hs, 0f, out, oOff, ldo);
    }

    /**
     * The cached forward of one head for one query (decode): q[qOff, +hs) attends to the {@code len} cached
     * positions (k/v[base + p * hs, +hs), its own included) and out[oOff, +hs) receives the weighted values;
     * the same softmax as training's attention. {@code scores} holds at least len floats.
     */
    public static void decodeCached(float[] out, int oOff, float[] q, int qOff, float[] k, float[] v, int base, int hs,
                                    int len, float scale, float[] scores) {
        for (int t = 0; t < len; t++) scores[t] = scale * VecMath.dot(q, qOff, k, base + t * hs, hs);
        softmax(scores, 0, len);
        Arrays.fill(out, oOff, oOff + hs, 0f);
        for (int t = 0; t < len; t++) VecMath.axpy(scores[t], v, base + t * hs, out, oOff, hs);
    }

    /** x[o, o+n) = softmax of itself, with the same vector pieces as the loss: max, exp and sum, scale. */
    public static void softmax(float[] x, int o, int n) {
        float sum = VecMath.expShiftSum(x, o, n, VecMath.max(x, o, n));
        VecMath.scale(x, o, n, 1f / sum);
    }

    /**
     * dqkv[B,T,3C] = gradient of qkv (overwritten) from dout[B,T,C]; scratch holds threads*T*T floats. With left
     * padding {@code start} (null: none) as {@link #forward}; pads get a zero gradient.
     */
    public static void backward(float[] dqkv, float[] dout, float[] qkv, float[] att, int B, int T, int C, int H,
                                float scale, float[] scratch, int[] start) {
        int hs = C / H, C3 = 3 * C;
        Parallel.forRange(B * H, (w, from, to) -> {
            int ds = w * T * T;
            for (int bh = from; bh < to; bh++) {
                int b = bh / H, h = bh % H, s = start == null ? 0 : start[b], n = T - s;
                int q = b * T * C3 + h * hs, k = q + C, v = q + 2 * C, a = bh * T * T, y = b * T * C + h * hs;
                if (s > 0) {
                    for (int t = 0; t < s; t++)
                        for (int part = 0; part < 3; part++) Arrays.fill(dqkv, q + t * C3 + part * C, q + t * C3 + part * C + hs, 0f);
                    if (n == 0) continue;
                    q += s * C3; k += s * C3; v += s * C3; a += s * T + s; y += s * C;
                }
                // dP = dY V^T ; dV = P^T dY
                Gemm.sgemmSerial(false, true, n, n, hs, 1f, dout, y, C, qkv, v, C3, 0f, scratch, ds, T);
                Gemm.sgemmSerial(true, false, n, hs, n, 1f, att, a, T, dout, y, C, 0f, dqkv, v, C3);
                // softmax backward: dS = P * (dP - rowsum(P * dP)), then the forward's scale
                for (int t = 0; t < n; t++) softmaxBackwardRow(att, a + t * T, scratch, ds + t * T, t + 1, n, scale);
                // dQ = dS K ; dK = dS^T Q
                Gemm.sgemmSerial(false, false, n, hs, n, 1f, scratch, ds, T, qkv, k, C3, 0f, dqkv, q, C3);
                Gemm.sgemmSerial(true, false, n, hs, n, 1f, scratch, ds, T, qkv, q, C3, 0f, dqkv, k, C3);
            }
        });
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** dS[j] = P[j] * (dP[j] - sum_k P[k] dP[k]) * scale for j < n, zero for n <= j < T; dP is overwritten by dS. */
    static void softmaxBackwardRow(float[] p, int po, float[] d, int dof, int n, int T, float scale) {
        float dot = VecMath.dot(p, po, d, dof, n);
        int ub = S.loopBound(n), j = 0;
        for (; j < ub; j += S.length()) {
            FloatVector pv = FloatVector.fromArray(S, p, po + j);
            FloatVector.fromArray(S, d, dof + j).sub(dot).mul(pv).mul(scale).intoArray(d, dof + j);
        }
        for (; j < n; j++) d[dof + j] = p[po + j] * (d[dof + j] - dot) * scale;
        Arrays.fill(d, dof + n, dof + T, 0f);
    }
}
