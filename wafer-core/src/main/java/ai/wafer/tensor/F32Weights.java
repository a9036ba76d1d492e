package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 values in a heap array, array[off, off + length): what training reads and writes (a parameter's own array,
 * or its slice of a flat store). The array is shared, not copied.
 */
public record F32Weights(float[] array, int off, int length) implements Weights {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Output columns per register block of the [in, out] kernel: four vectors. */
    static final int BW = 4 * L;
    /** Output rows per tile of the rows kernel: four rows of a 768-wide matrix are 12 KiB, well inside L1. */
    static final int TILE = 4;

    @Override public long size() { return length; }

    @Override public long bytes() { return 4L * length; }

    @Override public float get(long i) { return array[off + Math.toIntExact(i)]; }

    @Override public void read(long from, float[] dst, int dOff, int n) { System.arraycopy(array, off + Math.toIntExact(from), dst, dOff, n); }

    @Override public void decode(boolean rows, int n, int N, int K, float[] x, float[] out) {
        if (rows) decodeRows(n, N, K, x, out);
        else decodeInOut(n, N, K, x, out);
    }

    // ---- W stored [K, N]: vector accumulators over a block of output columns, weight rows streamed ----

    /**
     * Rows of W per pass over a thread's column blocks. Walking all K rows of one 4L-column block strides through
     * memory in 4L-float pieces, which the hardware prefetchers follow poorly; KB rows at a time, block after block,
     * reads a KB-row band of the thread's columns nearly in order (measured: full-K blocks were 20-40% slower than
     * the transposed-rows kernel this replaced, KB = 16 on par with it). Partial sums wait in {@code out}.
     */
    static final int KB = 16;

    private void decodeInOut(int n, int N, int K, float[] x, float[] out) {
        int blocks = (N + BW - 1) / BW;
        Parallel.forRange(blocks, (t, from, to) -> {
            for (int k0 = 0; k0 < K; k0 += KB) {
                int k1 = Math.min(K, k0 + KB);
                for (int b = from; b < to; b++) {
                    int j0 = b * BW;
                    if (j0 + BW > N) { if (k1 == K) decodeScalar(this, false, j0, N, n, N, K, x, out); continue; }
                    int i = 0;
                    for (; i + 1 < n; i += 2) inOut2(i, j0, N, K, k0, k1, x, out);
                    if (i < n) inOut1(i, j0, N, K, k0, k1, x, out);
                }
            }
        });
    }

    /** Accumulators for out[o, o + 4L): zero on the first band of rows, the partial sums after it. */
    static FloatVector start(int k0, float[] out, int o) { return k0 > 0 ? FloatVector.fromArray(F, out, o) : FloatVector.zero(F); }

    /** Columns j0..j0+BW, rows k0..k1 of W, for input rows i and i+1: each loaded weight vector meets both. */
    private void inOut2(int i, int j0, int N, int K, int k0, int k1, float[] x, float[] out) {
        float[] w = array;
        int o = i * N + j0, p = o + N;
        FloatVector a0 = start(k0, out, o), a1 = start(k0, out, o + L);
        FloatVector a2 = start(k0, out, o + 2 * L), a3 = start(k0, out, o + 3 * L);
        FloatVector b0 = start(k0, out, p), b1 = start(k0, out, p + L);
        FloatVector b2 = start(k0, out, p + 2 * L), b3 = start(k0, out, p + 3 * L);
        int x0 = i * K, x1 = x0 + K;
        for (int k = k0, wk = off + k0 * N + j0; k < k1; k++, wk += N) {
            FloatVector q0 = FloatVector.fromArray(F, w, wk), q1 = FloatVector.fromArray(F, w, wk + L);
            FloatVector q2 = FloatVector.fromArray(F, w, wk + 2 * L), q3 = FloatVector.fromArray(F, w, wk + 3 * L);
            FloatVector u = FloatVector.broadcast(F, x[x0 + k]), v = FloatVector.broadcast(F, x[x1 + k]);
            a0 = q0.fma(u, a0); a1 = q1.fma(u, a1); a2 = q2.fma(u, a2); a3 = q3.fma(u, a3);
            b0 = q0.fma(v, b0); b1 = q1.fma(v, b1); b2 = q2.fma(v, b2); b3 = q3.fma(v, b3);
        }
        store4(a0, a1, a2, a3, out, o);
        store4(b0, b1, b2, b3, out, p);
    }

    private void inOut1(int i, int j0, int N, int K, int k0, int k1, float[] x, float[] out) {
        float[] w = array;
        int o = i * N + j0;
        FloatVector a0 = start(k0, out, o), a1 = start(k0, out, o + L);
        FloatVector a2 = start(k0, out, o + 2 * L), a3 = start(k0, out, o + 3 * L);
        int x0 = i * K;
        for (int k = k0, wk = off + k0 * N + j0; k < k1; k++, wk += N) {
            FloatVector u = FloatVector.broadcast(F, x[x0 + k]);
            a0 = FloatVector.fromArray(F, w, wk).fma(u, a0);
            a1 = FloatVector.fromArray(F, w, wk + L).fma(u, a1);
            a2 = FloatVector.fromArray(F, w, wk + 2 * L).fma(u, a2);
            a3 = FloatVector.fromArray(F, w, wk + 3 * L).fma(u, a3);
        }
        store4(a0, a1, a2, a3, out, o);
    }

    static void store4(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3, float[] out, int o) {
        a0.intoArray(out, o); a1.intoArray(out, o + L); a2.intoArray(out, o + 2 * L); a3.intoArray(out, o + 3 * L);
    }

    /**
     * Output columns [j0, j1) of {@link Weights#decode}, one value at a time through {@link Weights#get}: the edges
     * (a partial block or tile) a storage's vector kernels leave.
     */
    static void decodeScalar(Weights w, boolean rows, int j0, int j1, int n, int N, int K, float[] x, float[] out) {
        for (int i = 0; i < n; i++) {
            for (int j = j0; j < j1; j++) {
                float s = 0f;
                for (int k = 0; k < K; k++) s += x[i * K + k] * w.get(rows ? (long) j * K + k : (long) k * N + j);
                out[i * N + j] = s;
            }
        }
    }

    /** Per-thread float32 strips for {@link #decodeByStrips}, grown on demand and reused. */
    private static final ThreadLocal<float[]> STRIP = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * {@link Weights#decode} for a storage without a kernel of its own: each thread widens a strip of W at a time
     * ({@link Weights#read}: a row, or its columns of one row of [K, N]) into a reused buffer and multiply-adds it.
     */
    static void decodeByStrips(Weights w, boolean rows, int n, int N, int K, float[] x, float[] out) {
        Parallel.forRange(N, (t, from, to) -> {
            int m = rows ? K : to - from;
            float[] s = STRIP.get();
            if (s.length < m) STRIP.set(s = new float[m]);
            if (rows) {
                for (int r = from; r < to; r++) {
                    w.read((long) r * K, s, 0, K);
                    for (int i = 0; i < n; i++) out[i * N + r] = VecMath.dot(s, 0, x, i * K, K);
                }
                return;
            }
            for (int i = 0; i < n; i++) java.util.Arrays.fill(out, i * N + from, i * N + to, 0f);
            for (int k = 0; k < K; k++) {
                w.read((long) k * N + from, s, 0, m);
                for (int i = 0; i < n; i++) VecMath.axpy(x[i * K + k], s, 0, out, i * N + from, m);
            }
        });
    }

    // ---- W stored [N, K]: each output is the dot product of a contiguous row with the input ----

    private void decodeRows(int n, int N, int K, float[] x, float[] out) {
        int tiles = (N + TILE - 1) / TILE;
        Parallel.forRange(tiles, (w, from, to) -> {
            int r1 = Math.min(N, to * TILE);
            for (int r = from * TILE; r < r1; r += TILE) {
                if (r + TILE <= N) {
                    for (int i = 0; i + 1 < n; i += 2) tile4(out, x, i, i + 1, r, N, K);
                    if (n % 2 == 1) tile4x1(out, x, n - 1, r, N, K);
                } else decodeScalar(this, true, r, r1, n, N, K, x, out);
            }
        });
    }

    /** Four output rows r..r+3 for input rows i0 and i1. */
    private void tile4(float[] out, float[] x, int i0, int i1, int r, int rows, int cols) {
        float[] m = array;
        int x0 = i0 * cols, x1 = i1 * cols, w0 = off + r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        int upper = F.loopBound(cols), c = 0;
        for (; c < upper; c += L) {
            FloatVector v0 = FloatVector.fromArray(F, x, x0 + c), v1 = FloatVector.fromArray(F, x, x1 + c);
            FloatVector q = FloatVector.fromArray(F, m, w0 + c);
            a00 = q.fma(v0, a00); a01 = q.fma(v1, a01);
            q = FloatVector.fromArray(F, m, w1 + c);
            a10 = q.fma(v0, a10); a11 = q.fma(v1, a11);
            q = FloatVector.fromArray(F, m, w2 + c);
            a20 = q.fma(v0, a20); a21 = q.fma(v1, a21);
            q = FloatVector.fromArray(F, m, w3 + c);
            a30 = q.fma(v0, a30); a31 = q.fma(v1, a31);
        }
        float s00 = VecMath.sum(a00), s01 = VecMath.sum(a01), s10 = VecMath.sum(a10), s11 = VecMath.sum(a11);
        float s20 = VecMath.sum(a20), s21 = VecMath.sum(a21), s30 = VecMath.sum(a30), s31 = VecMath.sum(a31);
        for (; c < cols; c++) {
            float v0 = x[x0 + c], v1 = x[x1 + c];
            float q0 = m[w0 + c], q1 = m[w1 + c], q2 = m[w2 + c], q3 = m[w3 + c];
            s00 += q0 * v0; s01 += q0 * v1; s10 += q1 * v0; s11 += q1 * v1;
            s20 += q2 * v0; s21 += q2 * v1; s30 += q3 * v0; s31 += q3 * v1;
        }
        put4(out, i0 * rows + r, s00, s10, s20, s30);
        put4(out, i1 * rows + r, s01, s11, s21, s31);
    }

    /** out[o, o + 4) = s0..s3: the end of a tile of four output rows. */
    static void put4(float[] out, int o, float s0, float s1, float s2, float s3) {
        out[o] = s0; out[o + 1] = s1; out[o + 2] = s2; out[o + 3] = s3;
    }

    /** Four output rows for one input row, with even and odd halves in separate accumulators (eight FMA chains). */
    private void tile4x1(float[] out, float[] x, int i, int r, int rows, int cols) {
        float[] m = array;
        int x0 = i * cols, w0 = off + r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int c = 0, upper = (cols / (2 * L)) * (2 * L);
        for (; c < upper; c += 2 * L) {
            FloatVector e = FloatVector.fromArray(F, x, x0 + c), o = FloatVector.fromArray(F, x, x0 + c + L);
            a0 = FloatVector.fromArray(F, m, w0 + c).fma(e, a0); b0 = FloatVector.fromArray(F, m, w0 + c + L).fma(o, b0);
            a1 = FloatVector.fromArray(F, m, w1 + c).fma(e, a1); b1 = FloatVector.fromArray(F, m, w1 + c + L).fma(o, b1);
            a2 = FloatVector.fromArray(F, m, w2 + c).fma(e, a2); b2 = FloatVector.fromArray(F, m, w2 + c + L).fma(o, b2);
            a3 = FloatVector.fromArray(F, m, w3 + c).fma(e, a3); b3 = FloatVector.fromArray(F, m, w3 + c + L).fma(o, b3);
        }
        float s0 = VecMath.sum(a0.add(b0)), s1 = VecMath.sum(a1.add(b1)), s2 = VecMath.sum(a2.add(b2)), s3 = VecMath.sum(a3.add(b3));
        for (; c < cols; c++) {
            float v = x[x0 + c];
            s0 += m[w0 + c] * v; s1 += m[w1 + c] * v; s2 += m[w2 + c] * v; s3 += m[w3 + c] * v;
        }
        put4(out, i * rows + r, s0, s1, s2, s3);
    }
}
