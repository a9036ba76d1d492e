package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Causal multi-head self-attention on the packed c_attn output qkv[B,T,3C] (q, k, v side by
 * side, each split into H heads of size hs), in tiles of {@link #TILE} query rows: query tile [i0, i1) meets
 * only the keys [0, i1), so of the masked upper triangle only the upper halves of the diagonal tiles are
 * computed (T = 256: 62% of the full score matrix, against 100% before). A tile's scores (TILE x i1 floats, 64 KB
 * at T = 256) stay in cache between the score product, the softmax and the value product. The products run on
 * {@link #mm}, which reads q, k, v, the probabilities and the gradients where they lie: the packing of the
 * general GEMM (gathers across rows for every operand here) cost more than the tiles saved.
 *
 * <p>The softmax probabilities are kept for the backward pass in att[B,H,T,T], only where the backward reads
 * them: the causal rows of each head, up to the end of their tile (zero right of the diagonal there); the
 * rest of att (the upper triangle past the diagonal tiles, pad rows and columns) is neither written nor read.
 * Keeping them costs no more memory than before and spares the backward a second score product and softmax
 * (flash attention's recomputation pays off on a GPU, whose memory is the bottleneck, not here). Left padding
 * is a per-row count of leading pads, not a [B,T,T] mask: see {@link #forward}.
 */
public final class Attention {
    private Attention() {}

    /** Query rows per tile. */
    public static final int TILE = 64;

    /** Per-thread scratch for a head's keys (forward) or values (backward) transposed to [hs, n], grown on demand. */
    private static final ThreadLocal<float[]> TRANSPOSED = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Scores are {@code scale} q.k ({@link GptConfig#attnScale}). Left padding: row b's real tokens start at
     * {@code start[b]} (null: every row starts at 0). A real token attends only to the real tokens up to itself,
     * so a left-padded row computes exactly what the same row unpadded computes, on the [T-s, T-s] block below and
     * right of its s pads; the pads' outputs are zero, so nothing flows through them. Runs in parallel over
     * (batch, head, query tile).
     */
    public static void forward(float[] out, float[] att, float[] qkv, int B, int T, int C, int H, float scale, int[] start) {
        int hs = C / H, C3 = 3 * C, tiles = (T + TILE - 1) / TILE;
        Parallel.forRange(B * H * tiles, (w, from, to) -> {
            float[] kt = scratch(T * hs);
            int done = 0; // keys of the current head already in kt: a thread's tiles of one head come in order
            for (int u = from; u < to; u++) {
                int bh = u / tiles, b = bh / H, h = bh % H, s = start == null ? 0 : start[b], n = T - s;
                int i0 = u % tiles * TILE, i1 = Math.min(n, i0 + TILE), o = b * T * C + h * hs;
                if (i0 == 0) for (int t = 0; t < s; t++) Arrays.fill(out, o + t * C, o + t * C + hs, 0f);
                if (u == from || i0 == 0) done = 0;
                if (i0 >= n) continue;
                // the real block: q, k, v rows and att rows and columns from s on
                int q = b * T * C3 + s * C3 + h * hs, k = q + C, v = q + 2 * C, a = bh * T * T + s * T + s;
                o += s * C;
                transpose(qkv, k, C3, done, i1, hs, kt, T);
                done = i1;
                mm(i1 - i0, i1, hs, scale, qkv, q + i0 * C3, C3, 1, kt, 0, T, att, a + i0 * T, T);
                for (int t = i0; t < i1; t++) {
                    int r = a + t * T;
                    softmax(att, r, t + 1);
                    Arrays.fill(att, r + t + 1, r + i1, 0f);
                }
                mm(i1 - i0, hs, i1, 1f, att, a + i0 * T, T, 1, qkv, v, C3, out, o + i0 * C, C);
            }
        });
    }

    /** This thread's scratch of at least n floats. */
    private static float[] scratch(int n) {
        float[] t = TRANSPOSED.get();
        if (t.length < n) TRANSPOSED.set(t = new float[n]);
        return t;
    }

    /** t[d * ldt + j] = x[off + j * ld + d] for j0 <= j < j1, d < hs: rows of a head's keys or values as columns. */
    private static void transpose(float[] x, int off, int ld, int j0, int j1, int hs, float[] t, int ldt) {
        for (int d = 0; d < hs; d++)
            for (int j = j0, td = d * ldt; j < j1; j++) t[td + j] = x[off + j * ld + d];
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
     * padding {@code start} (null: none) as {@link #forward}; pads get a zero gradient. The same tiles as the
     * forward: dV by key tile [i0, i1) over the queries [i0, n) that see it, dP = dY V^T and dS by query tile
     * over keys [0, i1), dQ by query tile, then dK by key tile. Parallel over (batch, head): dK sums over all
     * of a head's query tiles, whose dS (threads*T*T scratch) is shared by both loops.
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
                float[] vt = scratch(n * hs);
                transpose(qkv, v, C3, 0, n, hs, vt, n);
                for (int i0 = 0; i0 < n; i0 += TILE) {
                    int m = Math.min(TILE, n - i0), i1 = i0 + m;
                    // dV[i0, i1) = P[i0.., i0..i1)^T dY[i0..]: P read down its columns; zero right of the diagonal
                    mm(m, hs, n - i0, 1f, att, a + i0 * T + i0, 1, T, dout, y + i0 * C, C, dqkv, v + i0 * C3, C3);
                    // dP = dY V^T; dS = P * (dP - rowsum(P * dP)) times the forward's scale; dQ = dS K
                    mm(m, i1, hs, 1f, dout, y + i0 * C, C, 1, vt, 0, n, scratch, ds + i0 * T, T);
                    for (int t = i0; t < i1; t++) softmaxBackwardRow(att, a + t * T, scratch, ds + t * T, t + 1, i1, scale);
                    mm(m, hs, i1, 1f, scratch, ds + i0 * T, T, 1, qkv, k, C3, dqkv, q + i0 * C3, C3);
                }
                // dK[j0, j1) = dS[j0.., j0..j1)^T Q[j0..], once dS has all its rows
                for (int j0 = 0; j0 < n; j0 += TILE)
                    mm(Math.min(TILE, n - j0), hs, n - j0, 1f, scratch, ds + j0 * T + j0, 1, T, qkv, q + j0 * C3, C3, dqkv, k + j0 * C3, C3);
            }
        });
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int VL = S.length(), NB = 2 * VL;

    /**
     * C[c + r ldc + j] = alpha sum_k A[a + r ar + k ak] B[b + k ldb + j] for r < M, j < N (C overwritten): a
     * product without packing. A's elements are broadcast from where they lie (so A may be read along its
     * columns), B's rows are contiguous; eight rows by two vectors of C stay in registers over the k loop, as in
     * {@link Gemm}'s micro-kernel (four by four spilled: 18 GFLOP/s; eight by two 100-113 at the 111M model's head
     * shapes, one thread, against 50-81 for the packed GEMM).
     */
    static void mm(int M, int N, int K, float alpha, float[] A, int a, int ar, int ak, float[] B, int b, int ldb,
                   float[] C, int c, int ldc) {
        for (int j = 0; j < N; j += NB) {
            int r = 0;
            if (j + NB <= N)
                for (; r + 8 <= M; r += 8) block(K, alpha, A, a + r * ar, ar, ak, B, b + j, ldb, C, c + r * ldc + j, ldc);
            for (; r < M; r++) row(Math.min(NB, N - j), K, alpha, A, a + r * ar, ak, B, b + j, ldb, C, c + r * ldc + j);
        }
    }

    private static void block(int K, float alpha, float[] A, int a, int ar, int ak, float[] B, int b, int ldb,
                              float[] C, int c, int ldc) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        for (int k = 0; k < K; k++) {
            int bk = b + k * ldb, x = a + k * ak;
            FloatVector b0 = FloatVector.fromArray(S, B, bk), b1 = FloatVector.fromArray(S, B, bk + VL);
            FloatVector x0 = FloatVector.broadcast(S, A[x]);
            c00 = x0.fma(b0, c00); c01 = x0.fma(b1, c01);
            FloatVector x1 = FloatVector.broadcast(S, A[x + ar]);
            c10 = x1.fma(b0, c10); c11 = x1.fma(b1, c11);
            FloatVector x2 = FloatVector.broadcast(S, A[x + 2 * ar]);
            c20 = x2.fma(b0, c20); c21 = x2.fma(b1, c21);
            FloatVector x3 = FloatVector.broadcast(S, A[x + 3 * ar]);
            c30 = x3.fma(b0, c30); c31 = x3.fma(b1, c31);
            FloatVector x4 = FloatVector.broadcast(S, A[x + 4 * ar]);
            c40 = x4.fma(b0, c40); c41 = x4.fma(b1, c41);
            FloatVector x5 = FloatVector.broadcast(S, A[x + 5 * ar]);
            c50 = x5.fma(b0, c50); c51 = x5.fma(b1, c51);
            FloatVector x6 = FloatVector.broadcast(S, A[x + 6 * ar]);
            c60 = x6.fma(b0, c60); c61 = x6.fma(b1, c61);
            FloatVector x7 = FloatVector.broadcast(S, A[x + 7 * ar]);
            c70 = x7.fma(b0, c70); c71 = x7.fma(b1, c71);
        }
        c00.mul(alpha).intoArray(C, c); c01.mul(alpha).intoArray(C, c + VL); c += ldc;
        c10.mul(alpha).intoArray(C, c); c11.mul(alpha).intoArray(C, c + VL); c += ldc;
        c20.mul(alpha).intoArray(C, c); c21.mul(alpha).intoArray(C, c + VL); c += ldc;
        c30.mul(alpha).intoArray(C, c); c31.mul(alpha).intoArray(C, c + VL); c += ldc;
        c40.mul(alpha).intoArray(C, c); c41.mul(alpha).intoArray(C, c + VL); c += ldc;
        c50.mul(alpha).intoArray(C, c); c51.mul(alpha).intoArray(C, c + VL); c += ldc;
        c60.mul(alpha).intoArray(C, c); c61.mul(alpha).intoArray(C, c + VL); c += ldc;
        c70.mul(alpha).intoArray(C, c); c71.mul(alpha).intoArray(C, c + VL);
    }

    /** One row of {@link #mm} over n columns, a vector (masked at the end) at a time: ragged edges, small heads. */
    private static void row(int n, int K, float alpha, float[] A, int a, int ak, float[] B, int b, int ldb, float[] C, int c) {
        for (int j = 0; j < n; j += VL) {
            var m = S.indexInRange(j, n);
            FloatVector acc = FloatVector.zero(S);
            for (int k = 0; k < K; k++) acc = FloatVector.fromArray(S, B, b + k * ldb + j, m).fma(FloatVector.broadcast(S, A[a + k * ak]), acc);
            acc.mul(alpha).intoArray(C, c + j, m);
        }
    }

    /** dS[j] = P[j] * (dP[j] - sum_k P[k] dP[k]) * scale for j < n, zero for n <= j < end; dP is overwritten by dS. */
    static void softmaxBackwardRow(float[] p, int po, float[] d, int dof, int n, int end, float scale) {
        float dot = VecMath.dot(p, po, d, dof, n);
        int ub = S.loopBound(n), j = 0;
        for (; j < ub; j += S.length()) {
            FloatVector pv = FloatVector.fromArray(S, p, po + j);
            FloatVector.fromArray(S, d, dof + j).sub(dot).mul(pv).mul(scale).intoArray(d, dof + j);
        }
        for (; j < n; j++) d[dof + j] = p[po + j] * (d[dof + j] - dot) * scale;
        Arrays.fill(d, dof + n, dof + end, 0f);
    }
}
