package ai.wafer.model;

import ai.wafer.tensor.Gemm;
import ai.wafer.tensor.Parallel;

import java.lang.foreign.MemorySegment;

/**
 * A Hugging Face Conv1D layer: out[N,OC] = inp[N,C] @ W[C,OC] + b. The weight is stored [in, out],
 * as GPT-2 checkpoints store it, so forward is an NN product, the input gradient NT and the
 * weight gradient TN. The weight is a segment ({@link Parameter#values()}): a heap array, or a frozen
 * weight still mapped from its checkpoint file.
 */
public final class Linear {
    private Linear() {}

    /** {@link #forward(float[], float[], MemorySegment, float[], int, int, int)} for a weight in a heap array. */
    public static void forward(float[] out, float[] inp, float[] w, float[] b, int N, int C, int OC) {
        forward(out, inp, MemorySegment.ofArray(w), b, N, C, OC);
    }

    public static void forward(float[] out, float[] inp, MemorySegment w, float[] b, int N, int C, int OC) {
        if (b != null) {
            Parallel.forRange(N, (t, from, to) -> {
                for (int i = from; i < to; i++) System.arraycopy(b, 0, out, i * OC, OC);
            });
        }
        Gemm.sgemm(false, false, N, OC, C, 1f, inp, 0, C, w, 0, OC, b != null ? 1f : 0f, out, 0, OC);
    }

    /**
     * dinp[N,C] (+)= dout @ W^T (accumulates when {@code accumulate}, else overwrites; skipped when
     * null); dw[C,OC] += inp^T @ dout and db += column sums of dout (each skipped when null: frozen).
     */
    public static void backward(float[] dinp, boolean accumulate, float[] dw, float[] db, float[] dout,
                                float[] inp, float[] w, int N, int C, int OC) {
        backward(dinp, accumulate, dw, db, dout, inp, MemorySegment.ofArray(w), N, C, OC);
    }

    public static void backward(float[] dinp, boolean accumulate, float[] dw, float[] db, float[] dout,
                                float[] inp, MemorySegment w, int N, int C, int OC) {
        if (dinp != null)
            Gemm.sgemm(false, true, N, C, OC, 1f, dout, 0, OC, w, 0, OC, accumulate ? 1f : 0f, dinp, 0, C);
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
