package ai.wafer.model;

import ai.wafer.tensor.Kernels;
import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.Weights;

/**
 * A Hugging Face Conv1D layer: out[N,OC] = inp[N,C] @ W[C,OC] + b. The weight is stored [in, out],
 * as GPT-2 checkpoints store it, so forward is an NN product, the input gradient NT and the
 * weight gradient TN. The weight is read through its storage ({@link Parameter#weights()}): a heap array,
 * a frozen weight still mapped from its checkpoint file, or bf16.
 */
public final class Linear {
    private Linear() {}

    /**
     * The forward on a weight in any storage ({@link Weights}: float32 heap or mapped, bf16): a GEMM through the
     * selected {@link Kernels}, as training and prefill run it. {@code b} null: no bias.
     */
    public static void forward(float[] out, float[] inp, Parameter w, Parameter b, int N, int C, int OC) {
        if (b != null) {
            Parallel.forRange(N, (t, from, to) -> {
                for (int i = from; i < to; i++) System.arraycopy(b.data, b.off, out, i * OC, OC);
            });
        }
        Kernels.current().matmul(false, false, N, OC, C, 1f, inp, 0, C, w.weights(), 0, OC, b != null ? 1f : 0f, out, 0, OC);
    }

    /**
     * The forward for a few rows (n sequences decoding one token each): out[n,OC] = inp[n,C] @ W + b on the weight's
     * own [in, out] layout, memory bound, so each weight is read once for all n rows ({@link Weights#decode}).
     */
    public static void decode(float[] out, float[] inp, Parameter w, Parameter b, int n, int C, int OC) {
        Kernels.current().decode(w.weights(), false, n, OC, C, inp, out);
        if (b != null) for (int i = 0; i < n; i++) for (int j = 0; j < OC; j++) out[i * OC + j] += b.data[b.off + j];
    }

    /**
     * dinp[N,C] (+)= dout @ W^T (accumulates when {@code accumulate}, else overwrites; skipped when null); the
     * gradients of a trainable w and b accumulate dW[C,OC] += inp^T @ dout and db += column sums of dout.
     */
    public static void backward(float[] dinp, boolean accumulate, float[] dout, float[] inp, Parameter w, Parameter b,
                                int N, int C, int OC) {
        boolean fresh = w.trainable() && w.claimZeroGrad(); // the product writes dW whole: no zeros to fill and read
        Kernels.current().matmulBackward(false, N, OC, C, 1f, dout, inp, w.weights(), 0, OC, dinp, accumulate,
                w.trainable() ? w.grad() : null, w.off, !fresh);
        if (b != null && b.trainable()) {
            float[] db = b.grad();
            int bo = b.off;
            // split over output columns so no two threads write the same element
            Parallel.forRange(OC, (t, from, to) -> {
                for (int i = 0; i < N; i++) {
                    int o = i * OC;
                    for (int j = from; j < to; j++) db[bo + j] += dout[o + j];
                }
            });
        }
    }
}
