package ai.wafer.tensor;

/** The Java (Vector API) kernels: {@link Gemm}'s packed, register-blocked GEMM and each storage's decode kernel. */
public class JavaKernels implements Kernels {
    JavaKernels() {}

    @Override public void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                                float[] B, int bOff, int ldb, float beta, float[] C, int cOff, int ldc) {
        Gemm.sgemmJava(transA, transB, M, N, K, alpha, A, aOff, lda, B, null, bOff, ldb, beta, C, cOff, ldc, true);
    }

    /** The GEMM packs B straight from the storage: f32 arrays or segments as they are, bf16 widened while packing. */
    @Override public void matmul(boolean transA, boolean transW, int M, int N, int K, float alpha, float[] A, int aOff, int lda,
                                 Weights W, long wOff, int ldw, float beta, float[] C, int cOff, int ldc) {
        if (W instanceof F32Weights f)
            Gemm.sgemmJava(transA, transW, M, N, K, alpha, A, aOff, lda, f.array(), null, f.off() + Math.toIntExact(wOff), ldw, beta, C, cOff, ldc, true);
        else Gemm.sgemmJava(transA, transW, M, N, K, alpha, A, aOff, lda, null, W, wOff, ldw, beta, C, cOff, ldc, true);
    }
}
