package ai.wafer.tensor;

/**
 * The kernel seam: layers (training, prefill and decode alike) call their matrix products, attention and the few
 * elementwise kernels through this, on weights held in a {@link Weights} storage and activations in flat row-major
 * heap arrays (a trainable weight and its gradient sit at one offset of their arrays: a flat store's slice). Two
 * implementations: {@link JavaKernels} (Vector API) and {@link BlasKernels} (OpenBLAS through FFM for the GEMMs,
 * the Java kernels for the rest); the defaults below are the Java ones ({@link LayerNorm}, {@link Gelu},
 * {@link Attention}, {@link VecMath}); {@link Bf16Kernels} wraps either for bf16 mixed precision. {@link #current} picks one as
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
     * The backward of {@link #matmul} {@code out[M, N] = alpha * inp[M, K] @ op(W)} (dense rows, as the layers store
     * them): {@code dinp = alpha * dout @ op(W)^T}, added to dinp when {@code accumulate} (skipped when dinp is null),
     * and W's gradient, laid out as W (row stride {@code ldw}), {@code gW[gOff..] += alpha * inp^T @ dout}, or
     * {@code alpha * dout^T @ inp} when W is stored [N, K] ({@code transW}), written over gW's old values unless
     * {@code gAccumulate} (a gradient still zero this step: {@code Parameter.claimZeroGrad}); skipped when gW is null. One call because
     * both products read dout: bf16 rounds it once for the two (llm.c's matmul_backward, for the same reason).
     */
    default void matmulBackward(boolean transW, int M, int N, int K, float alpha, float[] dout, float[] inp, Weights W, long wOff,
                                int ldw, float[] dinp, boolean accumulate, float[] gW, int gOff, boolean gAccumulate) {
        if (dinp != null) matmul(false, !transW, M, K, N, alpha, dout, 0, N, W, wOff, ldw, accumulate ? 1f : 0f, dinp, 0, K);
        if (gW == null) return;
        float beta = gAccumulate ? 1f : 0f;
        if (transW) sgemm(true, false, N, K, M, alpha, dout, 0, N, inp, 0, K, beta, gW, gOff, ldw);
        else sgemm(true, false, K, N, M, alpha, inp, 0, K, dout, 0, N, beta, gW, gOff, ldw);
    }

    /**
     * A forward pass starts: the weights may have changed since the last one (an optimizer step, a load), and stay
     * as they are until its backward is done. bf16 keeps the rounded weights of a pass for its backward.
     */
    default void newPass() {}

    /**
     * Where an optimizer stepping the dense trainable weight array[off, off + n) leaves the new values rounded to bf16
     * ({@link Bf16Weights#toBf16}), so that the next pass's products use them instead of rounding the weight again;
     * null when the products take no rounded weights. The caller must fill all n and be the last to write those
     * values before the next pass ({@link #newPass}); a later pass (another micro-batch) rounds them itself.
     */
    default short[] nextPassWeights(float[] array, int off, int n) { return null; }

    /**
     * The decode product for n (a few) rows: out[n, N] = x[n, K] @ op(W), W stored [K, N] or, when
     * {@code rows}, [N, K] (see {@link Weights#decode}). Memory bound, so on the CPU every storage runs its own kernel.
     */
    default void decode(Weights W, boolean rows, int n, int N, int K, float[] x, float[] out) {
        W.decode(rows, n, N, K, x, out);
    }

    /** LayerNorm over rows of C, saving mean and rstd (see {@link LayerNorm#forward}). */
    default void layerNorm(float[] out, float[] mean, float[] rstd, float[] inp, float[] w, int wOff, float[] b, int bOff,
                           int N, int C, float eps) {
        LayerNorm.forward(out, mean, rstd, inp, w, wOff, b, bOff, N, C, eps);
    }

    /** dinp += LayerNorm's input gradient; dw, db (at the weights' offsets; null: frozen) accumulate. */
    default void layerNormBackward(float[] dinp, float[] dout, float[] inp, float[] w, float[] dw, int wOff, float[] db, int bOff,
                                   float[] mean, float[] rstd, int N, int C, float[] scratch) {
        LayerNorm.backward(dinp, dout, inp, w, dw, wOff, db, bOff, mean, rstd, N, C, scratch);
    }

    /**
     * out[i] = act(inp[i]) for i < n; unless {@code slope} is null (inference), also slope[i] = act'(inp[i]) for the
     * backward (slope may be inp: training keeps it in the pre-activation's buffer).
     */
    default void activation(Activation act, float[] out, float[] inp, float[] slope, int n) { Gelu.forward(act, out, inp, slope, n); }

    /** dinp[i] = dout[i] * slope[i], the slope {@link #activation} kept (dinp may be dout). */
    default void activationBackward(float[] dinp, float[] slope, float[] dout, int n) { Gelu.backward(dinp, slope, dout, n); }

    /** Causal self-attention on packed qkv[B,T,3C], scores times {@code scale}, probabilities kept in att (see {@link Attention#forward}). */
    default void attention(float[] out, float[] att, float[] qkv, int B, int T, int C, int H, float scale, int[] start) {
        Attention.forward(out, att, qkv, B, T, C, H, scale, start);
    }

    default void attentionBackward(float[] dqkv, float[] dout, float[] qkv, float[] att, int B, int T, int C, int H, float scale,
                                   float[] scratch, int[] start) {
        Attention.backward(dqkv, dout, qkv, att, B, T, C, H, scale, scratch, start);
    }

    /** One head's attention over its KV cache for T new queries (see {@link Attention#forwardCached}; T = 1: decode). */
    default void attentionCached(float[] out, int oOff, int ldo, float[] q, int qOff, int ldq, float[] k, float[] v, int base, int hs,
                                 int past, int T, float scale, float[] scores) {
        if (T == 1) Attention.decodeCached(out, oOff, q, qOff, k, v, base, hs, past + 1, scale, scores);
        else Attention.forwardCached(out, oOff, ldo, q, qOff, ldq, k, v, base, hs, past, T, scale, scores);
    }

    /** acc[i] += x[i] for i < n: the residual connection. */
    default void add(float[] acc, float[] x, int n) {
        Parallel.forElements(n, (w, from, to) -> VecMath.axpy(1f, x, from, acc, from, to - from));
    }

    Kernels JAVA = new JavaKernels();
    Kernels BLAS = new BlasKernels();

    /**
     * The selected implementation, wrapped in {@link Bf16Kernels} under {@code --precision bf16} ({@link Precision});
     * always the Java kernels on a thread inside {@link Parallel#runSerially} (such ranks must not fan out into
     * OpenBLAS's or oneDNN's own thread pool).
     */
    static Kernels current() {
        boolean blas = Gemm.impl() == Gemm.Impl.BLAS && !Parallel.serialOnThisThread();
        if (Precision.selected() == Precision.bf16) return blas ? Bf16Kernels.OVER_BLAS : Bf16Kernels.OVER_JAVA;
        return blas ? BLAS : JAVA;
    }
}
