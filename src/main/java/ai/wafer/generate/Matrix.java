package ai.wafer.generate;

import ai.wafer.tensor.Gemm;
import ai.wafer.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix laid out for inference: [rows = outputs, cols = inputs], row-major, so every
 * output is the dot product of one contiguous row with the input. Held as float32 or as bfloat16
 * (the top 16 bits of a float, kept in a short[] and widened inside the kernel), which halves the
 * bytes a decode step has to stream from memory.
 *
 * <p>Decoding is bound by memory bandwidth, not arithmetic: {@link #mul} walks the weights exactly
 * once per call however many sequences are decoded together, by keeping a tile of four rows hot in
 * L1 while it visits every input row.
 */
public final class Matrix {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final IntVector HIGH = IntVector.broadcast(I, 0xFFFF0000);
    /** Output rows per tile: four rows of a 768-wide matrix are 12 KiB, well inside L1. */
    private static final int TILE = 4;

    public final int rows, cols;
    private final float[] f32;
    /**
     * bfloat16 values two to an int, element 2i in the low half and 2i+1 in the high half (little-endian
     * order, so the same bytes as a short[]). Widening a pair is then one shift (the even element) and one
     * mask (the odd one), with no lane conversion: the kernel reads 2L weights per int vector.
     */
    private final int[] bf16;
    /** The input rows rearranged for the packed kernel (evens then odds per 2L block), grown on demand. */
    private float[] xpairs = new float[0];

    private Matrix(int rows, int cols, float[] f32, short[] b) {
        this.rows = rows;
        this.cols = cols;
        this.f32 = f32;
        if (b == null) {
            this.bf16 = null;
        } else {
            int[] p = new int[(b.length + 1) / 2];
            for (int i = 0; i < b.length; i++) p[i >> 1] |= (i & 1) == 0 ? b[i] & 0xFFFF : b[i] << 16;
            this.bf16 = p;
        }
    }

    /** A matrix already stored [out, in] (an embedding used as the LM head); float32 shares the array. */
    public static Matrix ofRows(float[] w, int rows, int cols, WeightType type) {
        if (type == WeightType.F32) return new Matrix(rows, cols, w, null);
        short[] b = new short[rows * cols];
        Parallel.forRange(b.length, (t, from, to) -> { for (int i = from; i < to; i++) b[i] = toBf16(w[i]); });
        return new Matrix(rows, cols, null, b);
    }

    /** A Hugging Face Conv1D weight stored [in, out]: transposed once here so decoding reads rows. */
    public static Matrix ofConv1D(float[] w, int in, int out, WeightType type) {
        float[] f = type == WeightType.F32 ? new float[in * out] : null;
        short[] b = type == WeightType.BF16 ? new short[in * out] : null;
        Parallel.forRange(out, (t, from, to) -> {
            for (int o = from; o < to; o++) {
                for (int i = 0; i < in; i++) {
                    float v = w[i * out + o];
                    if (f != null) f[o * in + i] = v; else b[o * in + i] = toBf16(v);
                }
            }
        });
        return new Matrix(out, in, f, b);
    }

    public WeightType type() { return f32 != null ? WeightType.F32 : WeightType.BF16; }

    public long bytes() { return (long) rows * cols * (f32 != null ? 4 : 2); }

    /** Round to nearest even, as PyTorch converts float32 to bfloat16; NaN stays a (quiet) NaN. */
    public static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) ((bits >>> 16) | 0x40);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    public static float fromBf16(short s) { return Float.intBitsToFloat(s << 16); }

    /** Copies row r (widened to float) into dst[off, off + cols). */
    public void row(int r, float[] dst, int off) {
        int o = r * cols;
        if (f32 != null) { System.arraycopy(f32, o, dst, off, cols); return; }
        for (int c = 0; c < cols; c++) dst[off + c] = bf16At(o + c);
    }

    /**
     * out[i, :] = x[i, :] @ W^T + bias for i < n: x is [n, cols], out is [n, rows], both row-major;
     * bias may be null. Parallel over tiles of output rows; n is the number of sequences decoded together.
     */
    public void mul(float[] out, float[] x, int n, float[] bias) {
        final float[] xin = bf16 != null && cols % 2 == 0 ? pairs(x, n) : x; // tile4's order; dot1 reads x as given
        int tiles = (rows + TILE - 1) / TILE;
        Parallel.forRange(tiles, (w, from, to) -> {
            int r1 = Math.min(rows, to * TILE);
            for (int r = from * TILE; r < r1; r += TILE) {
                if (r + TILE <= rows) {
                    for (int i = 0; i + 1 < n; i += 2) tile4(out, xin, i, i + 1, r, bias);
                    if (n % 2 == 1) tile4x1(out, xin, n - 1, r, bias);
                } else {
                    for (int rr = r; rr < r1; rr++) for (int i = 0; i < n; i++) out[i * rows + rr] = dot1(x, i * cols, rr) + (bias == null ? 0f : bias[rr]);
                }
            }
        });
    }

    /** Four output rows r..r+3 for input rows i0 and i1 (i1 == i0 when n is odd: computed twice, stored once). */
    private void tile4(float[] out, float[] x, int i0, int i1, int r, float[] bias) {
        int x0 = i0 * cols, x1 = i1 * cols, w0 = r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        int upper = F.loopBound(cols), c = 0;
        if (f32 != null) {
            float[] m = f32;
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
        } else if (cols % 2 == 0) {
            // x was rearranged by pairs(): per 2L block, L even-indexed inputs then L odd-indexed ones
            int[] m = bf16;
            upper = (cols / (2 * L)) * (2 * L);
            for (; c < upper; c += 2 * L) {
                FloatVector e0 = FloatVector.fromArray(F, x, x0 + c), o0 = FloatVector.fromArray(F, x, x0 + c + L);
                FloatVector e1 = FloatVector.fromArray(F, x, x1 + c), o1 = FloatVector.fromArray(F, x, x1 + c + L);
                IntVector p = IntVector.fromArray(I, m, (w0 + c) >> 1);
                FloatVector qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), qo = p.and(HIGH).reinterpretAsFloats();
                a00 = qo.fma(o0, qe.fma(e0, a00)); a01 = qo.fma(o1, qe.fma(e1, a01));
                p = IntVector.fromArray(I, m, (w1 + c) >> 1);
                qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); qo = p.and(HIGH).reinterpretAsFloats();
                a10 = qo.fma(o0, qe.fma(e0, a10)); a11 = qo.fma(o1, qe.fma(e1, a11));
                p = IntVector.fromArray(I, m, (w2 + c) >> 1);
                qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); qo = p.and(HIGH).reinterpretAsFloats();
                a20 = qo.fma(o0, qe.fma(e0, a20)); a21 = qo.fma(o1, qe.fma(e1, a21));
                p = IntVector.fromArray(I, m, (w3 + c) >> 1);
                qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); qo = p.and(HIGH).reinterpretAsFloats();
                a30 = qo.fma(o0, qe.fma(e0, a30)); a31 = qo.fma(o1, qe.fma(e1, a31));
            }
        } else {
            upper = 0; // odd rows straddle ints: the scalar loop below does them
        }
        float s00 = ai.wafer.tensor.VecMath.sum(a00), s01 = ai.wafer.tensor.VecMath.sum(a01);
        float s10 = ai.wafer.tensor.VecMath.sum(a10), s11 = ai.wafer.tensor.VecMath.sum(a11);
        float s20 = ai.wafer.tensor.VecMath.sum(a20), s21 = ai.wafer.tensor.VecMath.sum(a21);
        float s30 = ai.wafer.tensor.VecMath.sum(a30), s31 = ai.wafer.tensor.VecMath.sum(a31);
        for (; c < cols; c++) {
            float v0 = x[x0 + c], v1 = x[x1 + c];
            float q0 = at(w0 + c), q1 = at(w1 + c), q2 = at(w2 + c), q3 = at(w3 + c);
            s00 += q0 * v0; s01 += q0 * v1; s10 += q1 * v0; s11 += q1 * v1;
            s20 += q2 * v0; s21 += q2 * v1; s30 += q3 * v0; s31 += q3 * v1;
        }
        if (bias != null) {
            s00 += bias[r]; s01 += bias[r]; s10 += bias[r + 1]; s11 += bias[r + 1];
            s20 += bias[r + 2]; s21 += bias[r + 2]; s30 += bias[r + 3]; s31 += bias[r + 3];
        }
        int o0 = i0 * rows + r, o1 = i1 * rows + r;
        out[o1] = s01; out[o1 + 1] = s11; out[o1 + 2] = s21; out[o1 + 3] = s31;
        out[o0] = s00; out[o0 + 1] = s10; out[o0 + 2] = s20; out[o0 + 3] = s30;
    }

    /**
     * Four output rows r..r+3 for the one input row i (batch 1, or the odd row of a batch): tile4 without the
     * second input, which would only repeat the first one's work. Even and odd halves keep separate accumulators,
     * eight independent FMA chains.
     */
    private void tile4x1(float[] out, float[] x, int i, int r, float[] bias) {
        int x0 = i * cols, w0 = r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int c = 0, upper;
        if (f32 != null) {
            float[] m = f32;
            upper = (cols / (2 * L)) * (2 * L);
            for (; c < upper; c += 2 * L) {
                FloatVector e = FloatVector.fromArray(F, x, x0 + c), o = FloatVector.fromArray(F, x, x0 + c + L);
                a0 = FloatVector.fromArray(F, m, w0 + c).fma(e, a0); b0 = FloatVector.fromArray(F, m, w0 + c + L).fma(o, b0);
                a1 = FloatVector.fromArray(F, m, w1 + c).fma(e, a1); b1 = FloatVector.fromArray(F, m, w1 + c + L).fma(o, b1);
                a2 = FloatVector.fromArray(F, m, w2 + c).fma(e, a2); b2 = FloatVector.fromArray(F, m, w2 + c + L).fma(o, b2);
                a3 = FloatVector.fromArray(F, m, w3 + c).fma(e, a3); b3 = FloatVector.fromArray(F, m, w3 + c + L).fma(o, b3);
            }
        } else if (cols % 2 == 0) {
            int[] m = bf16; // x is in pairs() order: L even-indexed inputs, then L odd-indexed ones
            upper = (cols / (2 * L)) * (2 * L);
            for (; c < upper; c += 2 * L) {
                FloatVector e = FloatVector.fromArray(F, x, x0 + c), o = FloatVector.fromArray(F, x, x0 + c + L);
                IntVector p = IntVector.fromArray(I, m, (w0 + c) >> 1);
                a0 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a0); b0 = p.and(HIGH).reinterpretAsFloats().fma(o, b0);
                p = IntVector.fromArray(I, m, (w1 + c) >> 1);
                a1 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a1); b1 = p.and(HIGH).reinterpretAsFloats().fma(o, b1);
                p = IntVector.fromArray(I, m, (w2 + c) >> 1);
                a2 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a2); b2 = p.and(HIGH).reinterpretAsFloats().fma(o, b2);
                p = IntVector.fromArray(I, m, (w3 + c) >> 1);
                a3 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a3); b3 = p.and(HIGH).reinterpretAsFloats().fma(o, b3);
            }
        }
        float s0 = ai.wafer.tensor.VecMath.sum(a0.add(b0)), s1 = ai.wafer.tensor.VecMath.sum(a1.add(b1));
        float s2 = ai.wafer.tensor.VecMath.sum(a2.add(b2)), s3 = ai.wafer.tensor.VecMath.sum(a3.add(b3));
        for (; c < cols; c++) {
            float v = x[x0 + c];
            s0 += at(w0 + c) * v; s1 += at(w1 + c) * v; s2 += at(w2 + c) * v; s3 += at(w3 + c) * v;
        }
        if (bias != null) { s0 += bias[r]; s1 += bias[r + 1]; s2 += bias[r + 2]; s3 += bias[r + 3]; }
        int o0 = i * rows + r;
        out[o0] = s0; out[o0 + 1] = s1; out[o0 + 2] = s2; out[o0 + 3] = s3;
    }

    private float dot1(float[] x, int xo, int r) {
        int w = r * cols;
        float s = 0;
        for (int c = 0; c < cols; c++) s += at(w + c) * x[xo + c];
        return s;
    }

    private float at(int i) { return f32 != null ? f32[i] : bf16At(i); }

    private float bf16At(int i) {
        int p = bf16[i >> 1];
        return Float.intBitsToFloat((i & 1) == 0 ? p << 16 : p & 0xFFFF0000);
    }

    /**
     * x[n, cols] rearranged for the packed bf16 kernel: within each full 2L block the L even-indexed values, then
     * the L odd-indexed ones (matching the shift/mask halves of a packed int vector); the tail stays in place.
     */
    private float[] pairs(float[] x, int n) {
        if (xpairs.length < n * cols) xpairs = new float[n * cols];
        float[] xp = xpairs;
        int upper = (cols / (2 * L)) * (2 * L);
        for (int i = 0; i < n; i++) {
            int o = i * cols;
            for (int c = 0; c < upper; c += 2 * L) {
                for (int j = 0; j < L; j++) {
                    xp[o + c + j] = x[o + c + 2 * j];
                    xp[o + c + L + j] = x[o + c + 2 * j + 1];
                }
            }
            System.arraycopy(x, o + upper, xp, o + upper, cols - upper);
        }
        return xp;
    }

    /**
     * out[T, rows] = x[T, cols] @ W^T + bias, for a prompt (T > 1): arithmetic bound, so it goes to
     * the blocked GEMM. BF16 weights are widened into {@code scratch} (rows*cols floats) first.
     */
    public void gemm(float[] out, float[] x, int T, float[] bias, float[] scratch) {
        float[] w = f32;
        if (w == null) {
            w = scratch;
            int n = rows * cols;
            Parallel.forRange((n + 4095) / 4096, (t, from, to) -> {
                int hi = Math.min(n, to * 4096);
                for (int i = from * 4096; i < hi; i++) scratch[i] = bf16At(i);
            });
        }
        if (bias != null) for (int t = 0; t < T; t++) System.arraycopy(bias, 0, out, t * rows, rows);
        Gemm.sgemm(false, true, T, rows, cols, 1f, x, 0, cols, w, 0, cols, bias != null ? 1f : 0f, out, 0, rows);
    }
}
