package ai.wafer.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Weight-only int8: a [rows, cols] matrix stored as signed bytes, one float scale per output channel (symmetric,
 * scale = max|w| / 127, as LLM.int8's and llama.cpp's Q8 per-channel schemes): per column for a Conv1D weight
 * stored [in, out], per row for the LM head and embedding stored [V, C]. A quarter of float32's bytes, so a
 * memory-bound decode step streams a quarter as much; the scale multiplies each output once, after its sum.
 */
public final class Int8Weights implements Weights {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Bytes that widen to one float vector. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4));

    private final byte[] q;
    private final float[] scale;
    private final int rows, cols;
    private final boolean perColumn;

    private Int8Weights(byte[] q, float[] scale, int rows, int cols, boolean perColumn) {
        this.q = q;
        this.scale = scale;
        this.rows = rows;
        this.cols = cols;
        this.perColumn = perColumn;
    }

    /** {@code w} as a [rows, cols] matrix quantized with one scale per column ({@code perColumn}) or per row. */
    public static Int8Weights of(Weights w, int rows, int cols, boolean perColumn) {
        if ((long) rows * cols != w.size()) throw new IllegalArgumentException(rows + " x " + cols + " is not " + w.size() + " values");
        float[] v = w.toFloatArray(), scale = new float[perColumn ? cols : rows];
        for (int i = 0; i < v.length; i++) {
            int s = perColumn ? i % cols : i / cols;
            scale[s] = Math.max(scale[s], Math.abs(v[i]));
        }
        for (int s = 0; s < scale.length; s++) scale[s] = scale[s] == 0 ? 1f : scale[s] / 127f;
        byte[] q = new byte[v.length];
        Parallel.forRange(v.length, (t, from, to) -> {
            for (int i = from; i < to; i++) q[i] = (byte) Math.round(v[i] / scale[perColumn ? i % cols : i / cols]);
        });
        return new Int8Weights(q, scale, rows, cols, perColumn);
    }

    @Override public long size() { return q.length; }

    @Override public long bytes() { return q.length + 4L * scale.length; }

    @Override public float get(long i) {
        int j = Math.toIntExact(i);
        return q[j] * scale[perColumn ? j % cols : j / cols];
    }

    @Override public void read(long from, float[] dst, int off, int n) {
        for (int i = 0, f = Math.toIntExact(from); i < n; i++) dst[off + i] = q[f + i] * scale[perColumn ? (f + i) % cols : (f + i) / cols];
    }

    /**
     * The stored layout with the scales on the output side runs vectorized: [in, out] (rows == false) per column, or
     * [out, in] rows per row; the other pairing (a matrix used against its grain) takes the scalar path.
     */
    @Override public void decode(boolean rowsLayout, int n, int N, int K, float[] x, float[] out) {
        if (rowsLayout == perColumn) {
            F32Weights.decodeScalar(this, rowsLayout, 0, N, n, N, K, x, out);
            return;
        }
        if (rowsLayout) {
            Parallel.forRange(N, (t, from, to) -> {
                for (int r = from; r < to; r++) for (int i = 0; i < n; i++) out[i * N + r] = dotRow(r, K, x, i * K) * scale[r];
            });
            return;
        }
        // as the float32 kernel: bands of KB rows over the thread's blocks of 4L columns (four independent FMA chains),
        // partial sums waiting in out; the scales multiply each output once, after its last band
        int BW = F32Weights.BW, blocks = (N + BW - 1) / BW, KB = F32Weights.KB;
        Parallel.forRange(blocks, (t, from, to) -> {
            int full = Math.max(from, Math.min(to, N / BW)); // [from, full) are whole blocks
            for (int k0 = 0; k0 < K; k0 += KB) {
                int k1 = Math.min(K, k0 + KB);
                for (int b = from; b < full; b++) {
                    int j0 = b * BW;
                    for (int i = 0; i < n; i++) {
                        int o = i * N + j0, xo = i * K;
                        FloatVector a0 = F32Weights.start(k0, out, o), a1 = F32Weights.start(k0, out, o + L);
                        FloatVector a2 = F32Weights.start(k0, out, o + 2 * L), a3 = F32Weights.start(k0, out, o + 3 * L);
                        for (int k = k0, wk = k0 * N + j0; k < k1; k++, wk += N) {
                            FloatVector u = FloatVector.broadcast(F, x[xo + k]);
                            a0 = widen(wk).fma(u, a0);
                            a1 = widen(wk + L).fma(u, a1);
                            a2 = widen(wk + 2 * L).fma(u, a2);
                            a3 = widen(wk + 3 * L).fma(u, a3);
                        }
                        if (k1 == K) {
                            a0 = a0.mul(FloatVector.fromArray(F, scale, j0)); a1 = a1.mul(FloatVector.fromArray(F, scale, j0 + L));
                            a2 = a2.mul(FloatVector.fromArray(F, scale, j0 + 2 * L)); a3 = a3.mul(FloatVector.fromArray(F, scale, j0 + 3 * L));
                        }
                        F32Weights.store4(a0, a1, a2, a3, out, o);
                    }
                }
            }
            for (int b = full; b < to; b++) F32Weights.decodeScalar(this, false, b * BW, Math.min(N, b * BW + BW), n, N, K, x, out);
        });
    }

    /** L weights from q[at], widened to floats. */
    private FloatVector widen(int at) {
        return (FloatVector) ByteVector.fromArray(B, q, at).convertShape(VectorOperators.B2F, F, 0);
    }

    private float dotRow(int r, int K, float[] x, int xo) {
        int base = r * K, c = 0, upper = (K / (4 * L)) * (4 * L);
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0; // four chains, as the float32 rows kernel
        for (; c < upper; c += 4 * L) {
            a0 = widen(base + c).fma(FloatVector.fromArray(F, x, xo + c), a0);
            a1 = widen(base + c + L).fma(FloatVector.fromArray(F, x, xo + c + L), a1);
            a2 = widen(base + c + 2 * L).fma(FloatVector.fromArray(F, x, xo + c + 2 * L), a2);
            a3 = widen(base + c + 3 * L).fma(FloatVector.fromArray(F, x, xo + c + 3 * L), a3);
        }
        for (; c + L <= K; c += L) a0 = widen(base + c).fma(FloatVector.fromArray(F, x, xo + c), a0);
        float s = VecMath.sum(a0.add(a1).add(a2.add(a3)));
        for (; c < K; c++) s += q[base + c] * x[xo + c];
        return s;
    }
}
