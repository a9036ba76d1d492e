package ai.wafer.model;

import ai.wafer.tensor.Gemm;

import java.util.Arrays;
import java.util.List;

/**
 * GPT2ForSequenceClassification's head: {@code score}, a linear layer [K, C] without bias, on the hidden
 * state of each sequence's last non-padding token (a causal model has seen the whole text only there).
 * It is at start + length - 1 of a row whose real tokens begin at start (0 when right-padded, the number of
 * pads when left-padded); Hugging Face finds the same token as the rightmost non-pad id, which needs the pad id
 * to differ from every real token, while lengths do not.
 */
public final class SequenceClassifier extends Head {
    private float[] pooled = new float[0];
    private int[] rows = new int[0];
    private int lastB;

    public SequenceClassifier(int C, int K, float initStd, long seed) {
        super("score.weight", C, K, initStd, seed);
    }

    @Override public List<Parameter> parameters() { return List.of(weight); }

    private void ensure(int B) {
        if (targets.length < B) { pooled = new float[B * C]; logits = new float[B * K]; losses = new float[B]; targets = new int[B]; rows = new int[B]; }
    }

    /** logits[B, K] from hidden[B*T, C] at (b, starts[b] + lengths[b] - 1), starts null: right padding; buffer reused. */
    public float[] logits(float[] hidden, int[] lengths, int[] starts, int B, int T) {
        ensure(B);
        for (int b = 0; b < B; b++) {
            rows[b] = b * T + (starts == null ? 0 : starts[b]) + Math.max(lengths[b], 1) - 1;
            System.arraycopy(hidden, rows[b] * C, pooled, b * C, C);
        }
        Gemm.sgemm(false, true, B, K, C, 1f, pooled, 0, C, weight.data, weight.off, C, 0f, logits, 0, K);
        lastB = B;
        return logits;
    }

    /** Summed cross-entropy over the sequences whose class is not ignored. */
    public double loss(float[] hidden, int[] lengths, int[] starts, int[] classes, int B, int T) {
        logits(hidden, lengths, starts, B, T);
        return loss(classes, B);
    }

    /** dhidden[B*T, C]: zero except at the pooled rows (overwritten); score's grad accumulates. */
    public void backward(float[] dhidden, int T, float scale) {
        int B = lastB;
        CrossEntropy.backward(logits, targets, B, K, 0, scale);
        Arrays.fill(dhidden, 0, B * T * C, 0f);
        for (int b = 0; b < B; b++)
            Gemm.sgemmSerial(false, false, 1, C, K, 1f, logits, b * K, K, weight.data, weight.off, C, 0f, dhidden, rows[b] * C, C);
        if (weight.trainable()) Gemm.sgemm(true, false, K, C, B, 1f, logits, 0, K, pooled, 0, C, 1f, weight.grad(), weight.off, C);
    }
}
