package ai.wafer.model;

import ai.wafer.tensor.Gemm;
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
     * selected {@link Kernels}, as training and prefill run it.
     */
    public static void forward(float[] out, float[] inp, Weights w, float[] b, int N, int C, int OC) {
        if (b != null) {
            Parallel.forRange(N, (t, from, to) -> {
                for (int i = from; i < to; i++) System.arraycopy(b, 0, out, i * OC, OC);
            });
        }
        Kernels.current().matmul(false, false, N, OC, C, 1f, inp, 0, C, w, 0, OC, b != null ? 1f : 0f, out, 0, OC);
    }

    /**
     * The forward for a few rows (n sequences decoding one token each): out[n,OC] = inp[n,C] @ W + b on the weight's
     * own [in, out] layout, memory bound, so each weight is read once for all n rows ({@link Weights#decode}).
     */
    public static void decode(float[] out, float[] inp, Weights w, float[] b, int n, int C, int OC) {
        Kernels.current().decode(w, false, n, OC, C, inp, b, out);
    }

    /**
     * dinp[N,C] (+)= dout @ W^T (accumulates when {@code accumulate}, else overwrites; skipped when
     * null); dw[C,OC] += inp^T @ dout and db += column sums of dout (each skipped when null: frozen).
     */
    public static void backward(float[] dinp, boolean accumulate, float[] dw, float[] db, float[] dout,
                                float[] inp, float[] w, int N, int C, int OC) {
        backward(dinp, accumulate, dw, db, dout, inp, Weights.of(w), N, C, OC);
    }

    public static void backward(float[] dinp, boolean accumulate, float[] dw, float[] db, float[] dout,
                                float[] inp, Weights w, int N, int C, int OC) {
        if (dinp != null)
            Kernels.current().matmul(false, true, N, C, OC, 1f, dout, 0, OC, w, 0, OC, accumulate ? 1f : 0f, dinp, 0, C);
        if (dw != null)
            Gemm.sgemm(true, false, C, OC, N, 1f, inp, 0, C, dout, 0, OC, 1f, dw, 0, OC);
        if (db != null) {
            // split over output columns so no two threads write the same element
            Parallel.forRange(OC, (t, from, to) -> {
                for (int i = 0; i < N; i++) {
                    int o = i * OC;
                    for (int j = from; j < to; j++) db[j] += dout[o + j];
                }
            });
        }
    }
}
