package ai.wafer.model;

import ai.wafer.tensor.Gemm;

import java.util.List;

/**
 * GPT2ForTokenClassification's head: {@code classifier}, a linear layer [K, C] + bias on every
 * position's hidden state; cross-entropy over positions whose label is not ignored (-100).
 */
public final class TokenClassifier extends Head {
    public final Parameter bias;
    private int lastN;
    /** The hidden states of the last forward (the model's array), read by backward for dW. */
    private float[] hidden;

    public TokenClassifier(int C, int K, float initStd, long seed) {
        super("classifier.weight", C, K, initStd, seed);
        bias = new Parameter("classifier.bias", K);
        bias.setTrainable(true);
    }

    @Override public List<Parameter> parameters() { return List.of(weight, bias); }

    private void ensure(int N) {
        if (targets.length < N) { logits = new float[N * K]; losses = new float[N]; targets = new int[N]; }
    }

    /** logits[N, K] = hidden @ W^T + b, into the head's buffer (returned; reused by the next call). */
    public float[] logits(float[] h, int N) {
        ensure(N);
        for (int i = 0; i < N; i++) System.arraycopy(bias.data, bias.off, logits, i * K, K);
        Gemm.sgemm(false, true, N, K, C, 1f, h, 0, C, weight.data, weight.off, C, 1f, logits, 0, K);
        lastN = N;
        hidden = h;
        return logits;
    }

    /** Summed cross-entropy over the positions with a label (>= 0); {@link #validTargets} says how many. */
    public double loss(float[] hidden, int[] labels, int N) {
        logits(hidden, N);
        return loss(labels, N);
    }

    /** dhidden[N, C] = d(scale * summed loss)/dhidden (overwritten); the head's grads accumulate. */
    public void backward(float[] dhidden, float scale) {
        int N = lastN;
        CrossEntropy.backward(logits, targets, N, K, 0, scale); // probabilities -> dlogits
        Gemm.sgemm(false, false, N, C, K, 1f, logits, 0, K, weight.data, weight.off, C, 0f, dhidden, 0, C);
        if (weight.trainable()) Gemm.sgemm(true, false, K, C, N, 1f, logits, 0, K, hidden, 0, C, 1f, weight.grad(), weight.off, C);
        if (bias.trainable()) {
            float[] db = bias.grad();
            int o = bias.off;
            for (int i = 0; i < N; i++) for (int k = 0; k < K; k++) db[o + k] += logits[i * K + k];
        }
    }

    /** Argmax label per position of the last {@link #logits}. */
    public static void argmax(float[] logits, int N, int K, int[] out) {
        for (int i = 0; i < N; i++) {
            int best = 0;
            for (int k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
            out[i] = best;
        }
    }
}
