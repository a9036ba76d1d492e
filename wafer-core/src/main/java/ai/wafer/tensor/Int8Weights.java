package ai.wafer.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Weight-only int8: a [rows, cols] matrix stored as signed bytes, with float scales on the output side (symmetric,
 * scale = max|w| / 127, as LLM.int8's and llama.cpp's Q8 schemes): one per output channel ({@code group} 0), or one per
 * output channel and group of {@code group} consecutive inputs (as GPTQ's and AWQ's group_size). A Conv1D weight
 * stored [in, out] has its scales per column ({@code perColumn}), [ceil(in / group), out] of them; the LM head and
 * embedding stored [V, C] per row, [V, ceil(C / group)]. The bytes and scales are segments: heap arrays when quantized
 * at load ({@link #of}), or regions of a read-only mapped file ({@code wafer convert --dtype int8}), used as they are.
 * A quarter of float32's bytes, so a memory-bound decode step streams a quarter as much.
 */
public final class Int8Weights implements Weights {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Bytes that widen to one float vector. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4));
    private static final ValueLayout.OfFloat LE = MappedF32Weights.LE;
    private static final ByteOrder O = ByteOrder.LITTLE_ENDIAN;

    private final MemorySegment q, scale;
    private final int rows, cols, groupSize, group, groups; // group: groupSize, or all inputs for 0
    private final boolean perColumn;

    /**
     * {@code q}: rows * cols bytes; {@code scale}: little-endian floats, [groups, cols] when {@code perColumn}, else
     * [rows, groups], where groups = ceil(inputs / group) (1 for group 0). {@code group} is 0 or a multiple of 16 (a
     * band of the [in, out] kernel never straddles two groups).
     */
    public Int8Weights(MemorySegment q, MemorySegment scale, int rows, int cols, boolean perColumn, int group) {
        int in = perColumn ? rows : cols;
        if (!validGroup(group)) throw new IllegalArgumentException("group size " + group + " is not 0 or a positive multiple of 16");
        this.groups = group == 0 || in == 0 ? 1 : (in + group - 1) / group;
        if (q.byteSize() != (long) rows * cols || scale.byteSize() != 4L * groups * (perColumn ? cols : rows))
            throw new IllegalArgumentException(q.byteSize() + " bytes and " + scale.byteSize() / 4 + " scales do not make a " + rows + " x " + cols
                    + " int8 matrix in groups of " + group);
        this.q = q;
        this.scale = scale;
        this.rows = rows;
        this.cols = cols;
        this.perColumn = perColumn;
        this.groupSize = group;
        this.group = group == 0 ? Math.max(1, in) : group;
    }

    /** Group sizes the kernels take: 0 (a scale per output channel) or a positive multiple of 16. */
    public static boolean validGroup(int group) { return group == 0 || group > 0 && group % 16 == 0; }

    /** {@code w} as a [rows, cols] matrix quantized with scales per column ({@code perColumn}) or per row, per {@code group} inputs (0: all). */
    public static Int8Weights of(Weights w, int rows, int cols, boolean perColumn, int group) {
        if ((long) rows * cols != w.size()) throw new IllegalArgumentException(rows + " x " + cols + " is not " + w.size() + " values");
        int in = perColumn ? rows : cols, g = group == 0 ? Math.max(1, in) : group, ng = (in + g - 1) / g;
        float[] v = w.toFloatArray(), s = new float[Math.max(1, ng) * (perColumn ? cols : rows)];
        // the scale index of value i: its output channel and its group of inputs
        java.util.function.IntUnaryOperator at = perColumn ? i -> i / cols / g * cols + i % cols : i -> i / cols * ng + i % cols / g;
        for (int i = 0; i < v.length; i++) s[at.applyAsInt(i)] = Math.max(s[at.applyAsInt(i)], Math.abs(v[i]));
        for (int j = 0; j < s.length; j++) s[j] = s[j] == 0 ? 1f : s[j] / 127f;
        byte[] b = new byte[v.length];
        Parallel.forRange(v.length, (t, from, to) -> {
            for (int i = from; i < to; i++) b[i] = (byte) Math.round(v[i] / s[at.applyAsInt(i)]);
        });
        // off the heap, as a mapped file's are: the kernels then see one kind of segment, which the JIT turns into plain
        // vector loads (a heap byte[] segment among native ones decoded at a fifth of the speed); freed with this storage
        MemorySegment scales = Arena.ofAuto().allocate(4L * s.length, 64), q = Arena.ofAuto().allocate(b.length, 64);
        for (int j = 0; j < s.length; j++) scales.setAtIndex(LE, j, s[j]);
        MemorySegment.copy(MemorySegment.ofArray(b), 0, q, 0, b.length);
        return new Int8Weights(q, scales, rows, cols, perColumn, group);
    }

    /** The stored bytes, row-major [rows, cols]. */
    public MemorySegment quantized() { return q; }

    /** The scales (little-endian floats), shaped {@link #scaleShape()}. */
    public MemorySegment scales() { return scale; }

    /** [groups, cols] for a per-column matrix, [rows, groups] for a per-row one. */
    public long[] scaleShape() { return scaleShape(rows, cols, perColumn, groupSize); }

    /** The shape of the scales of a [rows, cols] matrix quantized per column or per row, in groups of {@code group} inputs (0: one group). */
    public static long[] scaleShape(int rows, int cols, boolean perColumn, int group) {
        int in = perColumn ? rows : cols, groups = group == 0 || in == 0 ? 1 : (in + group - 1) / group;
        return perColumn ? new long[] {groups, cols} : new long[] {rows, groups};
    }

    /** Inputs per scale, 0 for one scale per output channel. */
    public int groupSize() { return groupSize; }

    @Override public long size() { return q.byteSize(); }

    @Override public long bytes() { return q.byteSize() + scale.byteSize(); }

    @Override public boolean mapped() { return q.isMapped(); }

    @Override public MemorySegment mapping() { return q.isMapped() ? q : null; }

    private float scaleOf(int r, int c) {
        return scale.getAtIndex(LE, perColumn ? (long) (r / group) * cols + c : (long) r * groups + c / group);
    }

    @Override public float get(long i) {
        int r = Math.toIntExact(i / cols), c = (int) (i % cols);
        return q.get(ValueLayout.JAVA_BYTE, i) * scaleOf(r, c);
    }

    @Override public void read(long from, float[] dst, int off, int n) {
        // a row at a time, so the scale index moves without a division per value
        for (long i = from, end = from + n; i < end; ) {
            int r = Math.toIntExact(i / cols), c = (int) (i % cols), c1 = (int) Math.min(cols, c + end - i);
            for (; c < c1; c++, i++) dst[off++] = q.get(ValueLayout.JAVA_BYTE, i) * scaleOf(r, c);
        }
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
                for (int r = from; r < to; r++) for (int i = 0; i < n; i++) out[i * N + r] = dotRow(r, K, x, i * K);
            });
            return;
        }
        // as the float32 kernel: bands of KB rows over the thread's blocks of 4L columns (four independent FMA chains);
        // a band lies in one group (group % KB == 0), so its sums take that group's scales once and join the partial
        // sums waiting in out
        int BW = F32Weights.BW, blocks = (N + BW - 1) / BW, KB = F32Weights.KB;
        Parallel.forRange(blocks, (t, from, to) -> {
            int full = Math.max(from, Math.min(to, N / BW)); // [from, full) are whole blocks
            for (int k0 = 0; k0 < K; k0 += KB) {
                int k1 = Math.min(K, k0 + KB);
                long so = 4L * (k0 / group) * N;
                for (int b = from; b < full; b++) {
                    int j0 = b * BW;
                    FloatVector s0 = FloatVector.fromMemorySegment(F, scale, so + 4L * j0, O), s1 = FloatVector.fromMemorySegment(F, scale, so + 4L * (j0 + L), O);
                    FloatVector s2 = FloatVector.fromMemorySegment(F, scale, so + 4L * (j0 + 2 * L), O), s3 = FloatVector.fromMemorySegment(F, scale, so + 4L * (j0 + 3 * L), O);
                    for (int i = 0; i < n; i++) {
                        int o = i * N + j0, xo = i * K;
                        // one scale per channel (groupSize 0): the unscaled sums wait in out and are scaled once, after
                        // the last band (a multiply per band cost 10% of decode); groups scale each band's own sums
                        FloatVector a0, a1, a2, a3;
                        if (groupSize == 0) {
                            a0 = F32Weights.start(k0, out, o); a1 = F32Weights.start(k0, out, o + L);
                            a2 = F32Weights.start(k0, out, o + 2 * L); a3 = F32Weights.start(k0, out, o + 3 * L);
                        } else a0 = a1 = a2 = a3 = FloatVector.zero(F);
                        for (int k = k0, wk = k0 * N + j0; k < k1; k++, wk += N) {
                            FloatVector u = FloatVector.broadcast(F, x[xo + k]);
                            a0 = widen(wk).fma(u, a0);
                            a1 = widen(wk + L).fma(u, a1);
                            a2 = widen(wk + 2 * L).fma(u, a2);
                            a3 = widen(wk + 3 * L).fma(u, a3);
                        }
                        if (groupSize == 0) {
                            if (k1 == K) { a0 = a0.mul(s0); a1 = a1.mul(s1); a2 = a2.mul(s2); a3 = a3.mul(s3); }
                            F32Weights.store4(a0, a1, a2, a3, out, o);
                        } else F32Weights.store4(a0.fma(s0, F32Weights.start(k0, out, o)), a1.fma(s1, F32Weights.start(k0, out, o + L)),
                                a2.fma(s2, F32Weights.start(k0, out, o + 2 * L)), a3.fma(s3, F32Weights.start(k0, out, o + 3 * L)), out, o);
                    }
                }
            }
            for (int b = full; b < to; b++) F32Weights.decodeScalar(this, false, b * BW, Math.min(N, b * BW + BW), n, N, K, x, out);
        });
    }

    /** L weights from q[at], widened to floats. */
    private FloatVector widen(long at) {
        return (FloatVector) ByteVector.fromMemorySegment(B, q, at, O).convertShape(VectorOperators.B2F, F, 0);
    }

    /** Row r against x[xo, xo + K): each group's dot product (four chains, as the float32 rows kernel) times its scale. */
    private float dotRow(int r, int K, float[] x, int xo) {
        long base = (long) r * K;
        FloatVector acc = FloatVector.zero(F);
        float tail = 0;
        for (int g0 = 0, gi = 0; g0 < K; g0 += group, gi++) {
            int g1 = Math.min(K, g0 + group), c = g0, upper = g0 + ((g1 - g0) / (4 * L)) * (4 * L);
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (; c < upper; c += 4 * L) {
                a0 = widen(base + c).fma(FloatVector.fromArray(F, x, xo + c), a0);
                a1 = widen(base + c + L).fma(FloatVector.fromArray(F, x, xo + c + L), a1);
                a2 = widen(base + c + 2 * L).fma(FloatVector.fromArray(F, x, xo + c + 2 * L), a2);
                a3 = widen(base + c + 3 * L).fma(FloatVector.fromArray(F, x, xo + c + 3 * L), a3);
            }
            for (; c + L <= g1; c += L) a0 = widen(base + c).fma(FloatVector.fromArray(F, x, xo + c), a0);
            float s = scale.getAtIndex(LE, (long) r * groups + gi), t = 0;
            acc = a0.add(a1).add(a2.add(a3)).fma(FloatVector.broadcast(F, s), acc);
            for (; c < g1; c++) t += q.get(ValueLayout.JAVA_BYTE, base + c) * x[xo + c];
            tail += t * s;
        }
        return VecMath.sum(acc) + tail;
    }
}
