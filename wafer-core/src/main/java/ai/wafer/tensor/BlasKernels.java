package ai.wafer.tensor;

/**
 * OpenBLAS (through FFM) for the GEMMs; decode stays on the Java kernels, which read each storage in place.
 * Without the library (see {@link Blas#available}) {@link Kernels#current} never picks this.
 */
public final class BlasKernels extends JavaKernels {
    /** Per-thread float32 scratch for a bf16 weight widened for OpenBLAS, grown on demand and reused. */
    private static final ThreadLocal<float[]> WIDE = ThreadLocal.withInitial(() -> new float[0]);

    BlasKernels() {}

    @Override public void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                                float[] B, int bOff, int ldb, float beta, float[] C, int cOff, int ldc) {
        Blas.sgemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    }

    @Override public void matmul(boolean transA, boolean transW, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                                 Weights W, long wOff, int ldw, float beta, float[] C, int cOff, int ldc) {
        switch (W) {
            case F32Weights f -> Blas.sgemm(transA, transW, M, N, K, alpha, A, aOff, lda, f.array(), f.off() + Math.toIntExact(wOff), ldw,
                    beta, C, cOff, ldc);
            case MappedF32Weights m -> Blas.sgemm(transA, transW, M, N, K, alpha, A, aOff, lda, m.segment(), wOff, ldw,
                    beta, C, cOff, ldc);
            default -> { // bf16, int8
                // OpenBLAS has no bf16 or int8 x f32 product: widen the rows op(W) reads into a reusable scratch
                int stored = transW ? N : K, cols = transW ? K : N, n = Math.toIntExact((long) (stored - 1) * ldw + cols);
                float[] w = WIDE.get();
                if (w.length < n) WIDE.set(w = new float[n]);
                float[] wide = w;
                Parallel.forRange(stored, (t, from, to) -> {
                    for (int r = from; r < to; r++) W.read(wOff + (long) r * ldw, wide, r * ldw, cols);
                });
                Blas.sgemm(transA, transW, M, N, K, alpha, A, aOff, lda, wide, 0, ldw, beta, C, cOff, ldc);
            }
        }
    }
}
