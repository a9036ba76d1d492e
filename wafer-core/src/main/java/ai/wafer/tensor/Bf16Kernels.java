package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * bf16 mixed precision ({@code --precision bf16}, see {@link Precision}): the layer GEMMs ({@link #sgemm},
 * {@link #matmul}) round both inputs to bfloat16 (to nearest even) and accumulate in float32, as PyTorch's autocast
 * runs a matmul; everything else (weights, gradients, the optimizer, LayerNorm, attention, GELU) stays float32 in the
 * wrapped kernels. The product runs in oneDNN ({@link OneDnn}) where the CPU has bf16 instructions and this wraps the
 * OpenBLAS kernels; otherwise the rounded inputs go to the wrapped float32 GEMM: the same products (a product of two
 * bf16 values is exact in float32), at float32 speed.
 */
final class Bf16Kernels implements Kernels {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Packed bf16 operands (oneDNN) or bf16-rounded float32 ones (the fallback), per calling thread, grown on demand. */
    private static final ThreadLocal<short[][]> PACKED = ThreadLocal.withInitial(() -> new short[2][0]);
    private static final ThreadLocal<float[][]> ROUNDED = ThreadLocal.withInitial(() -> new float[2][0]);
    /**
     * The float32 heap weights this thread's current pass has rounded (oneDNN path), by where they are: the backward's
     * input gradient multiplies by the same weights as the forward, so each is rounded and packed once a pass, not
     * twice (packing was a quarter of a 111M layer product's time: Bf16PackBench). {@link #newPass} marks them all
     * stale (the next use packs again, into the same array: a pass allocates nothing) and forgets those the last pass
     * did not use (a model no longer trained is not kept alive); frozen storages (mapped, bf16, int8: a large base) are
     * packed per product instead, to keep their memory.
     */
    private static final ThreadLocal<Pass> PASS = ThreadLocal.withInitial(Pass::new);

    /** This thread's packed weights, each stamped with the pass that packed it. */
    private static final class Pass {
        final java.util.Map<Slot, Packed> packed = new java.util.HashMap<>();
        long id = 1;
    }

    private static final class Packed {
        final short[] bits;
        long pass;
        Packed(int n) { bits = new short[n]; }
    }

    /**
     * A weight matrix within its heap array: the array (by identity), the offset, rows, columns and row stride; a dense
     * one (stride = columns) as one row of all its values, the key {@link #nextPassWeights} fills.
     */
    private record Slot(float[] array, long off, int rows, int cols, int ld) {
        static Slot of(float[] array, long off, int rows, int cols, int ld) {
            return ld == cols ? new Slot(array, off, 1, rows * cols, rows * cols) : new Slot(array, off, rows, cols, ld);
        }

        @Override public boolean equals(Object o) {
            return o instanceof Slot s && s.array == array && s.off == off && s.rows == rows && s.cols == cols && s.ld == ld;
        }
        @Override public int hashCode() { return System.identityHashCode(array) * 31 + Long.hashCode(off); }
    }

    static final Bf16Kernels OVER_BLAS = new Bf16Kernels(Kernels.BLAS, OneDnn.available());
    static final Bf16Kernels OVER_JAVA = new Bf16Kernels(Kernels.JAVA, false);

    private final Kernels fp32;
    private final boolean oneDnn;

    Bf16Kernels(Kernels fp32, boolean oneDnn) {
        this.fp32 = fp32;
        this.oneDnn = oneDnn;
    }

    /** Which path the bf16 products take here, and why (printed by the commands that take --precision). */
    static String describe() {
        if (Gemm.impl() == Gemm.Impl.JAVA) return "Java fallback (bf16-rounded inputs, float32 FMA): WAFER_GEMM=java or no OpenBLAS";
        return OneDnn.available() ? "oneDNN (" + OneDnn.ISA + ")" : "OpenBLAS fallback (bf16-rounded inputs, float32 FMA): " + OneDnn.ERROR;
    }

    @Override public void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                                float[] B, int bOff, int ldb, float beta, float[] C, int cOff, int ldc) {
        gemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, null, bOff, ldb, beta, C, cOff, ldc);
    }

    /**
     * The pass cache's entry for the dense weight array[off, off + n), stamped for the next pass: AdamW writes the
     * rounding of the values it steps into it (2 bytes an element more to write, where rounding at the pass read 4 and
     * wrote 2 again: 70 ms of a 111M step). Frozen and mapped weights never reach it.
     */
    @Override public short[] nextPassWeights(float[] array, int off, int n) {
        if (!oneDnn || n <= 0) return null;
        Pass pass = PASS.get();
        Packed e = pass.packed.computeIfAbsent(Slot.of(array, off, 1, n, n), s -> new Packed(n));
        e.pass = pass.id + 1;
        return e.bits;
    }

    @Override public void newPass() {
        Pass p = PASS.get();
        long last = p.id++;
        p.packed.values().removeIf(e -> e.pass < last);
    }

    @Override public void matmul(boolean transA, boolean transW, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                                 Weights W, long wOff, int ldw, float beta, float[] C, int cOff, int ldc) {
        if (oneDnn && W instanceof F32Weights f && M > 0 && N > 0 && K > 0 && alpha != 0f) {
            short[] w = passWeight(f, wOff, transW ? N : K, transW ? K : N, ldw);
            Blas.check(C, cOff, M, N, ldc, "C");
            int aRows = transA ? K : M, aCols = transA ? M : K;
            short[] a = packed(0, aRows * aCols);
            pack(A, null, aOff, lda, aRows, aCols, a, null);
            OneDnn.gemm(transA, transW, M, N, K, alpha, a, aCols, w, transW ? K : N, beta, C, cOff, ldc);
        } else if (W instanceof F32Weights f) gemm(transA, transW, M, N, K, alpha, A, aOff, lda, f.array(), null, f.off() + wOff, ldw, beta, C, cOff, ldc);
        else gemm(transA, transW, M, N, K, alpha, A, aOff, lda, null, W, wOff, ldw, beta, C, cOff, ldc);
    }

    /**
     * Both backward products on dout rounded once: the input gradient (dout x the pass's rounded weight) and the weight
     * gradient (dout with the rounded input). At 111M the second rounding of every dout was 50 ms a step, half of it
     * the LM head's 1024 x 50257 logit gradient.
     */
    @Override public void matmulBackward(boolean transW, int M, int N, int K, float alpha, float[] dout, float[] inp, Weights W, long wOff,
                                         int ldw, float[] dinp, boolean accumulate, float[] gW, int gOff, boolean gAccumulate) {
        if (!oneDnn || M <= 0 || N <= 0 || K <= 0 || alpha == 0f || !(W instanceof F32Weights f)) {
            Kernels.super.matmulBackward(transW, M, N, K, alpha, dout, inp, W, wOff, ldw, dinp, accumulate, gW, gOff, gAccumulate);
            return;
        }
        short[] d = packed(1, M * N);
        pack(dout, null, 0, N, M, N, d, null);
        if (dinp != null) { // dinp[M, K] (+)= dout @ op(W)^T
            short[] w = passWeight(f, wOff, transW ? N : K, transW ? K : N, ldw);
            Blas.check(dinp, 0, M, K, K, "dinp");
            OneDnn.gemm(false, !transW, M, K, N, alpha, d, N, w, transW ? K : N, accumulate ? 1f : 0f, dinp, 0, K);
        }
        if (gW == null) return;
        short[] x = packed(0, M * K);
        pack(inp, null, 0, K, M, K, x, null);
        if (transW) { // gW[N, K] += dout^T @ inp
            Blas.check(gW, gOff, N, K, ldw, "gW");
            OneDnn.gemm(true, false, N, K, M, alpha, d, N, x, K, gAccumulate ? 1f : 0f, gW, gOff, ldw);
        } else { // gW[K, N] += inp^T @ dout
            Blas.check(gW, gOff, K, N, ldw, "gW");
            OneDnn.gemm(true, false, K, N, M, alpha, x, K, d, N, gAccumulate ? 1f : 0f, gW, gOff, ldw);
        }
    }

    /** This thread's packing buffer {@code i} (0: A, 1: B or dout), at least n long. */
    private static short[] packed(int i, int n) {
        short[][] p = PACKED.get();
        if (p[i].length < n) p[i] = new short[n];
        return p[i];
    }

    /** The float32 heap weight (rows x cols from wOff, row stride ld) rounded and packed once this pass. */
    private static short[] passWeight(F32Weights f, long wOff, int rows, int cols, int ld) {
        Pass pass = PASS.get();
        Packed e = pass.packed.computeIfAbsent(Slot.of(f.array(), f.off() + wOff, rows, cols, ld), s -> new Packed(rows * cols));
        if (e.pass != pass.id) {
            pack(f.array(), null, f.off() + wOff, ld, rows, cols, e.bits, null);
            e.pass = pass.id;
        }
        return e.bits;
    }

    /** B is the heap array {@code B}, or when that is null the storage {@code Bw}; both read from bOff on. */
    private void gemm(boolean transA, boolean transB, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                      float[] B, Weights Bw, long bOff, int ldb, float beta, float[] C, int cOff, int ldc) {
        if (M <= 0 || N <= 0) return;
        if (K <= 0 || alpha == 0f) {
            Gemm.scaleC(M, N, beta, C, cOff, ldc);
            return;
        }
        int aRows = transA ? K : M, aCols = transA ? M : K, bRows = transB ? N : K, bCols = transB ? K : N;
        if (oneDnn) {
            Blas.check(C, cOff, M, N, ldc, "C"); // native code has no bounds checks
            short[] a = packed(0, aRows * aCols), b = packed(1, bRows * bCols);
            pack(A, null, aOff, lda, aRows, aCols, a, null);
            pack(B, Bw, bOff, ldb, bRows, bCols, b, null);
            OneDnn.gemm(transA, transB, M, N, K, alpha, a, aCols, b, bCols, beta, C, cOff, ldc);
        } else {
            float[][] r = ROUNDED.get();
            if (r[0].length < aRows * aCols) r[0] = new float[aRows * aCols];
            if (r[1].length < bRows * bCols) r[1] = new float[bRows * bCols];
            pack(A, null, aOff, lda, aRows, aCols, null, r[0]);
            pack(B, Bw, bOff, ldb, bRows, bCols, null, r[1]);
            fp32.sgemm(transA, transB, M, N, K, alpha, r[0], 0, aCols, r[1], 0, bCols, beta, C, cOff, ldc);
        }
    }

    /**
     * rows x cols of {@code src} (or of the storage {@code w} when src is null) from {@code off}, row stride ld, rounded
     * to bf16 into dense rows of {@code bits} (bf16 bit patterns) or, when that is null, of {@code values} (as float32).
     */
    private static void pack(float[] src, Weights w, long off, int ld, int rows, int cols, short[] bits, float[] values) {
        Parallel.forRange(rows, (t, from, to) -> {
            float[] row = src != null ? src : new float[cols];
            for (int r = from; r < to; r++) {
                int s = Math.toIntExact(off + (long) r * ld);
                if (src == null) {
                    w.read(off + (long) r * ld, row, 0, cols);
                    s = 0;
                }
                if (bits != null) Bf16Weights.round(row, s, bits, r * cols, cols);
                else round(row, s, values, r * cols, cols);
            }
        });
    }

    /** dst[d..d+n) = src[s..s+n) rounded to the nearest bf16 value, kept as float32. */
    static void round(float[] src, int s, float[] dst, int d, int n) {
        int i = 0;
        for (; i <= n - L; i += L) Bf16Weights.toBf16(FloatVector.fromArray(F, src, s + i)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, d + i);
        for (; i < n; i++) dst[d + i] = Bf16Weights.fromBf16(Bf16Weights.toBf16(src[s + i]));
    }
}
