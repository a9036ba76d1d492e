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

    /**
     * A row piece at a time, L values widened and scaled together: per column, the scales lie beside the values; per
     * row, one scale covers a group's piece. The GEMMs pack through this.
     */
    @Override public void read(long from, float[] dst, int off, int n) {
        MemorySegment q = this.q, scale = this.scale;
        for (long i = from, end = from + n; i < end; ) {
            int r = Math.toIntExact(i / cols), c = (int) (i % cols), c1 = (int) Math.min(cols, c + end - i);
            if (perColumn) {
                long s0 = (long) (r / group) * cols; // the scales of row r's group, by column
                for (; c + L <= c1; c += L, i += L, off += L)
                    widen(q, i).mul(FloatVector.fromMemorySegment(F, scale, 4 * (s0 + c), O)).intoArray(dst, off);
            } else {
                for (int g1; c + L <= c1; ) { // the piece of each group of inputs, under its one scale
                    g1 = Math.min(c1, (c / group + 1) * group);
                    FloatVector s = FloatVector.broadcast(F, scale.getAtIndex(LE, (long) r * groups + c / group));
                    for (; c + L <= g1; c += L, i += L, off += L) widen(q, i).mul(s).intoArray(dst, off);
                    if (c < g1) break; // fewer than L left in this group: the scalar loop finishes the piece
                }
            }
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
            // four rows at a time share each load of x; the rows of a thread's range are read in order
            Parallel.forRange((N + 3) / 4, (t, from, to) -> {
                for (int r = 4 * from, r1 = Math.min(N, 4 * to); r < r1; r += 4) {
                    if (r + 4 <= r1) for (int i = 0; i < n; i++) dotRows4(q, scale, groups, group, r, K, x, i * K, out, i * N + r);
                    else for (int rr = r; rr < r1; rr++) for (int i = 0; i < n; i++) out[i * N + rr] = dotRow(q, scale, groups, group, rr, K, x, i * K);
                }
            });
            return;
        }
        // a sweep down the rows, four at a time, each thread over its own range of rows: memory is read in order,
        // one stretch a thread. (Bands of 16 rows over blocks of columns, the float32 kernel's order, read 16 streams of
        // one row's N bytes each, too short for the prefetchers at a byte a weight; splitting the columns gave each
        // thread every row's half, which held mlp.c_proj (3072 rows of 768) to 9 GB/s.) Each thread sums into its own
        // partial vector, and the partials are added after. A group of rows (G % 16 == 0, so four rows never straddle
        // two) scales its four rows' sum as it joins the partial; one scale per channel scales the total
        int vectors = N / L, cols = vectors * L, threads = Parallel.threads(), size = n * N;
        float[] part = PARTIALS.get();
        if (part.length < threads * size) PARTIALS.set(part = new float[threads * size]);
        boolean[] ran = RAN.get();
        if (ran.length < threads) RAN.set(ran = new boolean[threads]);
        final float[] p = part;
        final boolean[] did = ran;
        if (cols > 0) Parallel.forRange((K + 3) / 4, (t, from, to) -> {
            sweep(q, scale, groupSize, group, n, N, K, x, p, t * size, cols, 4 * from, Math.min(K, 4 * to));
            did[t] = true;
        });
        for (int i = 0; i < n; i++)
            for (int j = 0; j < cols; j += L) {
                FloatVector sum = FloatVector.zero(F);
                for (int t = 0; t < threads; t++) if (did[t]) sum = sum.add(FloatVector.fromArray(F, p, t * size + i * N + j));
                if (groupSize == 0) sum = sum.mul(FloatVector.fromMemorySegment(F, scale, 4L * j, O));
                sum.intoArray(out, i * N + j);
            }
        java.util.Arrays.fill(did, false);
        if (cols < N) F32Weights.decodeScalar(this, false, cols, N, n, N, K, x, out);
    }

    /** Per-thread partial sums of the [in, out] decode, and which threads wrote theirs, of the calling thread. */
    private static final ThreadLocal<float[]> PARTIALS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<boolean[]> RAN = ThreadLocal.withInitial(() -> new boolean[0]);

    /**
     * Rows [k0, k1) of the [in, out] decode over columns [0, cols), into dst[d + i * N + j] (overwritten; unscaled
     * when there is one scale per channel). Static, over locals: the JIT then hoists the segments' checks.
     */
    private static void sweep(MemorySegment q, MemorySegment scale, int groupSize, int group, int n, int N, int K, float[] x,
                              float[] dst, int d, int cols, int k0, int k1) {
        for (int i = 0; i < n; i++) java.util.Arrays.fill(dst, d + i * N, d + i * N + cols, 0f);
        boolean grouped = groupSize != 0;
        int k = k0;
        for (; k + 4 <= k1; k += 4) {
            long r0 = (long) k * N, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N, so = 4L * (k / group) * N;
            for (int j = 0; j < cols; j += L) {
                FloatVector w0 = widen(q, r0 + j), w1 = widen(q, r1 + j), w2 = widen(q, r2 + j), w3 = widen(q, r3 + j);
                if (n == 1 && !grouped) {
                    int o = d + j;
                    FloatVector a = w0.fma(FloatVector.broadcast(F, x[k]), FloatVector.fromArray(F, dst, o));
                    a = w1.fma(FloatVector.broadcast(F, x[k + 1]), a);
                    a = w2.fma(FloatVector.broadcast(F, x[k + 2]), a);
                    w3.fma(FloatVector.broadcast(F, x[k + 3]), a).intoArray(dst, o);
                    continue;
                }
                FloatVector s = grouped ? FloatVector.fromMemorySegment(F, scale, so + 4L * j, O) : null;
                for (int i = 0, xo = 0, o = d + j; i < n; i++, xo += K, o += N) {
                    FloatVector a = grouped ? FloatVector.zero(F) : FloatVector.fromArray(F, dst, o);
                    a = w0.fma(FloatVector.broadcast(F, x[xo + k]), a);
                    a = w1.fma(FloatVector.broadcast(F, x[xo + k + 1]), a);
                    a = w2.fma(FloatVector.broadcast(F, x[xo + k + 2]), a);
                    a = w3.fma(FloatVector.broadcast(F, x[xo + k + 3]), a);
                    (grouped ? a.fma(s, FloatVector.fromArray(F, dst, o)) : a).intoArray(dst, o);
                }
            }
        }
        for (; k < k1; k++) { // the last rows of K % 4
            long r0 = (long) k * N, so = 4L * (k / group) * N;
            for (int j = 0; j < cols; j += L) {
                FloatVector w0 = widen(q, r0 + j);
                if (grouped) w0 = w0.mul(FloatVector.fromMemorySegment(F, scale, so + 4L * j, O));
                for (int i = 0, o = d + j; i < n; i++, o += N) w0.fma(FloatVector.broadcast(F, x[i * K + k]), FloatVector.fromArray(F, dst, o)).intoArray(dst, o);
            }
        }
    }

    /** L weights from q[at], widened to floats. */
    private static FloatVector widen(MemorySegment q, long at) {
        return (FloatVector) ByteVector.fromMemorySegment(B, q, at, O).convertShape(VectorOperators.B2F, F, 0);
    }

    /** Rows r..r+3 against x[xo, xo + K) into out[o..o+3]: {@link #dotRow} four times over one pass of x. */
    private static void dotRows4(MemorySegment q, MemorySegment scale, int groups, int group, int r, int K, float[] x, int xo, float[] out, int o) {
        long b0 = (long) r * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
        FloatVector t0 = FloatVector.zero(F), t1 = t0, t2 = t0, t3 = t0;
        float u0 = 0, u1 = 0, u2 = 0, u3 = 0;
        for (int g0 = 0, gi = 0; g0 < K; g0 += group, gi++) {
            int g1 = Math.min(K, g0 + group), c = g0, upper = g0 + ((g1 - g0) / L) * L;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (; c < upper; c += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + c);
                a0 = widen(q, b0 + c).fma(xv, a0);
                a1 = widen(q, b1 + c).fma(xv, a1);
                a2 = widen(q, b2 + c).fma(xv, a2);
                a3 = widen(q, b3 + c).fma(xv, a3);
            }
            float s0 = scale.getAtIndex(LE, (long) r * groups + gi), s1 = scale.getAtIndex(LE, (long) (r + 1) * groups + gi);
            float s2 = scale.getAtIndex(LE, (long) (r + 2) * groups + gi), s3 = scale.getAtIndex(LE, (long) (r + 3) * groups + gi);
            t0 = a0.fma(FloatVector.broadcast(F, s0), t0); t1 = a1.fma(FloatVector.broadcast(F, s1), t1);
            t2 = a2.fma(FloatVector.broadcast(F, s2), t2); t3 = a3.fma(FloatVector.broadcast(F, s3), t3);
            float v0 = 0, v1 = 0, v2 = 0, v3 = 0;
            for (; c < g1; c++) {
                float xc = x[xo + c];
                v0 += q.get(ValueLayout.JAVA_BYTE, b0 + c) * xc; v1 += q.get(ValueLayout.JAVA_BYTE, b1 + c) * xc;
                v2 += q.get(ValueLayout.JAVA_BYTE, b2 + c) * xc; v3 += q.get(ValueLayout.JAVA_BYTE, b3 + c) * xc;
            }
            u0 += v0 * s0; u1 += v1 * s1; u2 += v2 * s2; u3 += v3 * s3;
        }
        out[o] = VecMath.sum(t0) + u0;
        out[o + 1] = VecMath.sum(t1) + u1;
        out[o + 2] = VecMath.sum(t2) + u2;
        out[o + 3] = VecMath.sum(t3) + u3;
    }

    /** Row r against x[xo, xo + K): each group's dot product (four chains, as the float32 rows kernel) times its scale. */
    private static float dotRow(MemorySegment q, MemorySegment scale, int groups, int group, int r, int K, float[] x, int xo) {
        long base = (long) r * K;
        FloatVector acc = FloatVector.zero(F);
        float tail = 0;
        for (int g0 = 0, gi = 0; g0 < K; g0 += group, gi++) {
            int g1 = Math.min(K, g0 + group), c = g0, upper = g0 + ((g1 - g0) / (4 * L)) * (4 * L);
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (; c < upper; c += 4 * L) {
                a0 = widen(q, base + c).fma(FloatVector.fromArray(F, x, xo + c), a0);
                a1 = widen(q, base + c + L).fma(FloatVector.fromArray(F, x, xo + c + L), a1);
                a2 = widen(q, base + c + 2 * L).fma(FloatVector.fromArray(F, x, xo + c + 2 * L), a2);
                a3 = widen(q, base + c + 3 * L).fma(FloatVector.fromArray(F, x, xo + c + 3 * L), a3);
            }
            for (; c + L <= g1; c += L) a0 = widen(q, base + c).fma(FloatVector.fromArray(F, x, xo + c), a0);
            float s = scale.getAtIndex(LE, (long) r * groups + gi), t = 0;
            acc = a0.add(a1).add(a2.add(a3)).fma(FloatVector.broadcast(F, s), acc);
            for (; c < g1; c++) t += q.get(ValueLayout.JAVA_BYTE, base + c) * x[xo + c];
            tail += t * s;
        }
        return VecMath.sum(acc) + tail;
    }
}
