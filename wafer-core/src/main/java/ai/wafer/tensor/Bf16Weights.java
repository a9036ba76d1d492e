package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * bfloat16 values (the top 16 bits of a float) in a segment of little-endian 16-bit words, read two to an int: element
 * 2i in the low half and 2i+1 in the high half (the bytes of a short[] or of a safetensors BF16 tensor, so the same
 * class serves values rounded onto the heap and a bf16 checkpoint mapped in place). Widening a pair is one shift (the
 * even element) and one mask (the odd one), with no lane conversion: the kernels read 2L weights per int vector. Half
 * the bytes of float32, so a memory-bound decode step streams half as much.
 */
public final class Bf16Weights implements Weights {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final IntVector HIGH = IntVector.broadcast(I, 0xFFFF0000);
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final int BW = F32Weights.BW, TILE = F32Weights.TILE;

    private static final ThreadLocal<float[]> ACC = ThreadLocal.withInitial(() -> new float[0]), XP = ThreadLocal.withInitial(() -> new float[0]);
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final MemorySegment pairs;
    private final int size;

    private Bf16Weights(MemorySegment pairs, int size) {
        this.pairs = pairs;
        this.size = size;
    }

    /** The bf16 values of a segment (a BF16 tensor mapped from its file), used in place. */
    public static Bf16Weights of(MemorySegment bf16) { return new Bf16Weights(bf16, Math.toIntExact(bf16.byteSize() / 2)); }

    /** {@code values} rounded to bfloat16 (to nearest even), in parallel. */
    public static Bf16Weights of(float[] values) { return of(Weights.of(values)); }

    /**
     * Any storage's values rounded to bfloat16, off the heap as a mapped file's are: the kernels see one kind of segment,
     * which the JIT turns into plain vector loads (a heap segment decoded at a quarter of the speed); freed with this storage.
     */
    public static Bf16Weights of(Weights w) {
        if (w instanceof Bf16Weights b) return b;
        int n = Math.toIntExact(w.size());
        MemorySegment p = Arena.ofAuto().allocate(2L * n, 64);
        int chunk = 1 << 15; // values per task
        Parallel.forRange((n + chunk - 1) / chunk, (t, from, to) -> {
            float[] buf = new float[chunk];
            for (int c = from; c < to; c++) {
                int i0 = c * chunk, m = Math.min(chunk, n - i0);
                w.read(i0, buf, 0, m);
                for (int i = 0; i < m; i++) p.setAtIndex(LE16, i0 + i, toBf16(buf[i]));
            }
        });
        return new Bf16Weights(p, n);
    }

    /** Round to nearest even, as PyTorch converts float32 to bfloat16; NaN stays a (quiet) NaN. */
    public static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) ((bits >>> 16) | 0x40);
        // Adding 0x7FFF plus the lowest kept bit rounds ties to the even neighbour; overflow carries into the
        // exponent, which correctly turns values past the largest BF16 into infinity.
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    public static float fromBf16(short s) { return Float.intBitsToFloat(s << 16); }

    /** dst[d..d+n) = src[s..s+n) rounded to bf16 bit patterns (nearest even, as {@link #toBf16(float)}). */
    public static void round(float[] src, int s, short[] dst, int d, int n) {
        int i = 0;
        for (; i <= n - L; i += L)
            ((ShortVector) toBf16(FloatVector.fromArray(F, src, s + i)).convertShape(VectorOperators.I2S, S, 0)).intoArray(dst, d + i);
        for (; i < n; i++) dst[d + i] = toBf16(src[s + i]);
    }

    /**
     * {@link #toBf16} in vector lanes: each lane's bf16 bit pattern in its low 16 bits (callers narrow to shorts in
     * their own species). Carries past the largest bf16 make infinity; NaN stays a quiet NaN.
     */
    public static IntVector toBf16(FloatVector v) {
        IntVector u = v.reinterpretAsInts();
        IntVector r = u.add(u.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF);
        return r.blend(u.or(0x400000), v.test(VectorOperators.IS_NAN).cast(u.species())).lanewise(VectorOperators.LSHR, 16);
    }

    @Override public long size() { return size; }

    @Override public long bytes() { return 2L * size; }

    @Override public boolean mapped() { return pairs.isMapped(); }

    @Override public MemorySegment mapping() { return pairs.isMapped() ? pairs : null; }

    @Override public float get(long i) { return at(Math.toIntExact(i)); }

    private float at(int i) { return Float.intBitsToFloat(pairs.getAtIndex(LE16, i) << 16); }

    /** The int vector of pairs starting at pair index {@code pair}. */
    private IntVector load(int pair) { return IntVector.fromMemorySegment(I, pairs, 4L * pair, ByteOrder.LITTLE_ENDIAN); }

    /** Widened L values at a time (a bf16 value is the high half of its float32): the GEMMs pack through this. */
    @Override public void read(long from, float[] dst, int off, int n) {
        int f = Math.toIntExact(from), i = 0;
        MemorySegment p = pairs;
        for (; i <= n - L; i += L)
            ((IntVector) ShortVector.fromMemorySegment(S, p, 2L * (f + i), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, off + i);
        for (; i < n; i++) dst[off + i] = at(f + i);
    }

    @Override public void decode(boolean rows, int n, int N, int K, float[] x, float[] out) {
        if (rows) decodeRows(n, N, K, x, out);
        else decodeInOut(n, N, K, x, out);
    }

    // ---- W stored [K, N]: an int vector of row k covers 2L columns, evens widened by a shift, odds by a mask ----

    /** Bands of {@link F32Weights#KB} rows, as the float32 kernel; partial sums wait in a per-thread scratch. */
    private void decodeInOut(int n, int N, int K, float[] x, float[] out) {
        int blocks = (N + BW - 1) / BW, KB = F32Weights.KB;
        Parallel.forRange(blocks, (t, from, to) -> {
            int full = N % 2 == 0 ? Math.max(from, Math.min(to, N / BW)) : from; // [from, full) run vectorized
            // per block and row: even and odd columns of 2 int vectors; reused per thread (the first band writes before reading)
            float[] acc = ACC.get();
            if (acc.length < (full - from) * n * BW) ACC.set(acc = new float[(full - from) * n * BW]);
            for (int k0 = 0; k0 < K; k0 += KB) {
                int k1 = Math.min(K, k0 + KB);
                for (int b = from; b < full; b++) {
                    int i = 0, a0 = (b - from) * n * BW;
                    for (; i + 1 < n; i += 2) inOut2(i, b * BW, N, K, k0, k1, x, acc, a0 + i * BW);
                    if (i < n) inOut1(i, b * BW, N, K, k0, k1, x, acc, a0 + i * BW);
                }
            }
            for (int b = from; b < full; b++)
                for (int i = 0; i < n; i++) interleave(acc, ((b - from) * n + i) * BW, out, i * N + b * BW);
            for (int b = full; b < to; b++)
                F32Weights.decodeScalar(this, false, b * BW, Math.min(N, b * BW + BW), n, N, K, x, out);
        });
    }

    private static FloatVector start(int k0, float[] acc, int o) {
        return k0 == 0 ? FloatVector.zero(F) : FloatVector.fromArray(F, acc, o);
    }

    /** Columns j0..j0+4L, rows k0..k1, for input rows i and i+1 (acc[ao, +4L) and acc[ao + 4L, +4L)). */
    private void inOut2(int i, int j0, int N, int K, int k0, int k1, float[] x, float[] acc, int ao) {
        int bo = ao + BW;
        FloatVector e0 = start(k0, acc, ao), o0 = start(k0, acc, ao + L), e1 = start(k0, acc, ao + 2 * L), o1 = start(k0, acc, ao + 3 * L);
        FloatVector f0 = start(k0, acc, bo), p0 = start(k0, acc, bo + L), f1 = start(k0, acc, bo + 2 * L), p1 = start(k0, acc, bo + 3 * L);
        int x0 = i * K, x1 = x0 + K, half = N >> 1;
        for (int k = k0, wk = (k0 * N + j0) >> 1; k < k1; k++, wk += half) {
            IntVector a = load(wk), b = load(wk + L);
            FloatVector ae = a.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), ao2 = a.and(HIGH).reinterpretAsFloats();
            FloatVector be = b.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), bo2 = b.and(HIGH).reinterpretAsFloats();
            FloatVector u = FloatVector.broadcast(F, x[x0 + k]), v = FloatVector.broadcast(F, x[x1 + k]);
            e0 = ae.fma(u, e0); o0 = ao2.fma(u, o0); e1 = be.fma(u, e1); o1 = bo2.fma(u, o1);
            f0 = ae.fma(v, f0); p0 = ao2.fma(v, p0); f1 = be.fma(v, f1); p1 = bo2.fma(v, p1);
        }
        e0.intoArray(acc, ao); o0.intoArray(acc, ao + L); e1.intoArray(acc, ao + 2 * L); o1.intoArray(acc, ao + 3 * L);
        f0.intoArray(acc, bo); p0.intoArray(acc, bo + L); f1.intoArray(acc, bo + 2 * L); p1.intoArray(acc, bo + 3 * L);
    }

    private void inOut1(int i, int j0, int N, int K, int k0, int k1, float[] x, float[] acc, int ao) {
        FloatVector e0 = start(k0, acc, ao), o0 = start(k0, acc, ao + L), e1 = start(k0, acc, ao + 2 * L), o1 = start(k0, acc, ao + 3 * L);
        int x0 = i * K, half = N >> 1;
        for (int k = k0, wk = (k0 * N + j0) >> 1; k < k1; k++, wk += half) {
            IntVector a = load(wk), b = load(wk + L);
            FloatVector u = FloatVector.broadcast(F, x[x0 + k]);
            e0 = a.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(u, e0);
            o0 = a.and(HIGH).reinterpretAsFloats().fma(u, o0);
            e1 = b.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(u, e1);
            o1 = b.and(HIGH).reinterpretAsFloats().fma(u, o1);
        }
        e0.intoArray(acc, ao); o0.intoArray(acc, ao + L); e1.intoArray(acc, ao + 2 * L); o1.intoArray(acc, ao + 3 * L);
    }

    /** acc[a, a + 4L) (even columns, odd columns, of two int vectors) back into column order at out[o). */
    private static void interleave(float[] acc, int a, float[] out, int o) {
        for (int l = 0; l < L; l++) {
            out[o + 2 * l] = acc[a + l];
            out[o + 2 * l + 1] = acc[a + L + l];
            out[o + 2 * L + 2 * l] = acc[a + 2 * L + l];
            out[o + 2 * L + 2 * l + 1] = acc[a + 3 * L + l];
        }
    }

    // ---- W stored [N, K]: dot products of rows, x rearranged into the even/odd halves of each 2L block ----

    private void decodeRows(int n, int rows, int cols, float[] x, float[] out) {
        final float[] xin = cols % 2 == 0 ? pairs(x, n, cols) : x; // tile4's order; the scalar edge reads x as given
        int tiles = (rows + TILE - 1) / TILE;
        Parallel.forRange(tiles, (w, from, to) -> {
            int r1 = Math.min(rows, to * TILE);
            for (int r = from * TILE; r < r1; r += TILE) {
                if (r + TILE <= rows) {
                    for (int i = 0; i + 1 < n; i += 2) tile4(out, xin, x, i, i + 1, r, rows, cols);
                    if (n % 2 == 1) tile4x1(out, xin, x, n - 1, r, rows, cols);
                } else F32Weights.decodeScalar(this, true, r, r1, n, rows, cols, x, out);
            }
        });
    }

    /** Four output rows r..r+3 for input rows i0 and i1 (xp: x rearranged by pairs of inputs; x: as given, for the tail). */
    private void tile4(float[] out, float[] xp, float[] x, int i0, int i1, int r, int rows, int cols) {
        int x0 = i0 * cols, x1 = i1 * cols, w0 = r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        int c = 0, upper = cols % 2 == 0 ? (cols / (2 * L)) * (2 * L) : 0; // odd rows straddle ints: scalar below
        for (; c < upper; c += 2 * L) {
            FloatVector e0 = FloatVector.fromArray(F, xp, x0 + c), o0 = FloatVector.fromArray(F, xp, x0 + c + L);
            FloatVector e1 = FloatVector.fromArray(F, xp, x1 + c), o1 = FloatVector.fromArray(F, xp, x1 + c + L);
            IntVector p = load((w0 + c) >> 1);
            FloatVector qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), qo = p.and(HIGH).reinterpretAsFloats();
            a00 = qo.fma(o0, qe.fma(e0, a00)); a01 = qo.fma(o1, qe.fma(e1, a01));
            p = load((w1 + c) >> 1);
            qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); qo = p.and(HIGH).reinterpretAsFloats();
            a10 = qo.fma(o0, qe.fma(e0, a10)); a11 = qo.fma(o1, qe.fma(e1, a11));
            p = load((w2 + c) >> 1);
            qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); qo = p.and(HIGH).reinterpretAsFloats();
            a20 = qo.fma(o0, qe.fma(e0, a20)); a21 = qo.fma(o1, qe.fma(e1, a21));
            p = load((w3 + c) >> 1);
            qe = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); qo = p.and(HIGH).reinterpretAsFloats();
            a30 = qo.fma(o0, qe.fma(e0, a30)); a31 = qo.fma(o1, qe.fma(e1, a31));
        }
        float s00 = VecMath.sum(a00), s01 = VecMath.sum(a01), s10 = VecMath.sum(a10), s11 = VecMath.sum(a11);
        float s20 = VecMath.sum(a20), s21 = VecMath.sum(a21), s30 = VecMath.sum(a30), s31 = VecMath.sum(a31);
        for (; c < cols; c++) {
            float v0 = x[x0 + c], v1 = x[x1 + c];
            float q0 = at(w0 + c), q1 = at(w1 + c), q2 = at(w2 + c), q3 = at(w3 + c);
            s00 += q0 * v0; s01 += q0 * v1; s10 += q1 * v0; s11 += q1 * v1;
            s20 += q2 * v0; s21 += q2 * v1; s30 += q3 * v0; s31 += q3 * v1;
        }
        F32Weights.put4(out, i0 * rows + r, s00, s10, s20, s30);
        F32Weights.put4(out, i1 * rows + r, s01, s11, s21, s31);
    }

    /** Four output rows for one input row; even and odd halves keep separate accumulators, eight FMA chains. */
    private void tile4x1(float[] out, float[] xp, float[] x, int i, int r, int rows, int cols) {
        int x0 = i * cols, w0 = r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int c = 0, upper = cols % 2 == 0 ? (cols / (2 * L)) * (2 * L) : 0;
        for (; c < upper; c += 2 * L) {
            FloatVector e = FloatVector.fromArray(F, xp, x0 + c), o = FloatVector.fromArray(F, xp, x0 + c + L);
            IntVector p = load((w0 + c) >> 1);
            a0 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a0); b0 = p.and(HIGH).reinterpretAsFloats().fma(o, b0);
            p = load((w1 + c) >> 1);
            a1 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a1); b1 = p.and(HIGH).reinterpretAsFloats().fma(o, b1);
            p = load((w2 + c) >> 1);
            a2 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a2); b2 = p.and(HIGH).reinterpretAsFloats().fma(o, b2);
            p = load((w3 + c) >> 1);
            a3 = p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a3); b3 = p.and(HIGH).reinterpretAsFloats().fma(o, b3);
        }
        float s0 = VecMath.sum(a0.add(b0)), s1 = VecMath.sum(a1.add(b1)), s2 = VecMath.sum(a2.add(b2)), s3 = VecMath.sum(a3.add(b3));
        for (; c < cols; c++) {
            float v = x[x0 + c];
            s0 += at(w0 + c) * v; s1 += at(w1 + c) * v; s2 += at(w2 + c) * v; s3 += at(w3 + c) * v;
        }
        F32Weights.put4(out, i * rows + r, s0, s1, s2, s3);
    }

    /**
     * x[n, cols] rearranged for the packed kernel: within each full 2L block the L even-indexed values, then the L
     * odd-indexed ones (matching the shift/mask halves of a packed int vector); the tail stays in place.
     */
    private static float[] pairs(float[] x, int n, int cols) {
        float[] xp = XP.get(); // the calling thread's, reused: a decode step allocates nothing
        if (xp.length < n * cols) XP.set(xp = new float[n * cols]);
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
}
