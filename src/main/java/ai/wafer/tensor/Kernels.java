package ai.wafer.tensor;

/**
 * The kernel seam: layers (training, prefill and decode alike) call their matrix products through this, on weights
 * held in a {@link Weights} storage. Two implementations: {@link JavaKernels} (Vector API) and {@link BlasKernels}
 * (OpenBLAS through FFM for the GEMMs, the Java kernels for the rest); {@link #current} picks one as
 * {@code WAFER_GEMM=java|blas} says (default OpenBLAS when it loads; see {@link Gemm#setImpl}). Another device is
 * one more implementation of this interface.
 */
public interface Kernels {
    /** {@code C = alpha * op(A) * op(B) + beta * C} on row-major heap arrays (see {@link Gemm}); multithreaded. */
    void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
               float[] B, int bOff, int ldb, float beta, float[] C, int cOff, int ldc);

    /**
     * {@code C = alpha * op(A) * op(W) + beta * C} with W a stored weight: op(W) is K x N, stored K x N (a Conv1D
     * weight [in, out]) with row stride {@code ldw}, or N x K when {@code transW} (the tied LM head [V, C]); wOff in
     * elements. The GEMM of training and prefill.
     */
    void matmul(boolean transA, boolean transW, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                Weights W, long wOff, int ldw, float beta, float[] C, int cOff, int ldc);

    /**
     * The decode product for n (a few) rows: out[n, N] = x[n, K] @ op(W), W stored [K, N] or, when
     * {@code rows}, [N, K] (see {@link Weights#decode}). Memory bound, so on the CPU every storage runs its own kernel.
     */
    default void decode(Weights W, boolean rows, int n, int N, int K, float[] x, float[] out) {
        W.decode(rows, n, N, K, x, out);
    }

    Kernels JAVA = new JavaKernels();
    Kernels BLAS = new BlasKernels();

    /**
     * The selected implementation; always {@link #JAVA} on a thread inside {@link Parallel#runSerially} (such ranks
     * must not fan out into OpenBLAS's own thread pool).
     */
    static Kernels current() {
        return Gemm.impl() == Gemm.Impl.BLAS && !Parallel.serialOnThisThread() ? BLAS : JAVA;
    }
}
