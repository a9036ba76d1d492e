package ai.wafer.model;

import ai.wafer.WaferException;
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
    /**
     * What the K outputs mean, by Hugging Face's {@code problem_type} names (kept in config.json): one class of K
     * (softmax and cross-entropy), any subset of K labels (a sigmoid and binary cross-entropy per label, a label
     * predicted where its probability passes 0.5), or one real number (K = 1, mean squared error).
     */
    public enum Problem {
        SINGLE_LABEL("single_label_classification"), MULTI_LABEL("multi_label_classification"), REGRESSION("regression");

        public final String hfName;

        Problem(String hfName) { this.hfName = hfName; }

        public static Problem parse(String s) {
            for (Problem p : values()) if (p.hfName.equals(s)) return p;
            throw new WaferException("unknown problem type '" + s + "' (single_label_classification, multi_label_classification, regression)");
        }

        @Override public String toString() { return hfName; }
    }

    public final Problem problem;
    private float[] pooled = new float[0];
    private float[] targetValues = new float[0];
    private int[] rows = new int[0];
    private int lastB;

    public SequenceClassifier(int C, int K, float initStd, long seed, Problem problem) {
        super("score.weight", C, K, initStd, seed);
        this.problem = problem;
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

    /**
     * The summed loss of a batch: cross-entropy over the sequences whose class is not ignored (single label), or,
     * against {@code values} [B, K], binary cross-entropy with logits over every (sequence, label) (multi-label) or the
     * squared error (regression). {@link #validTargets} counts the terms, so loss / count is PyTorch's mean
     * ({@code BCEWithLogitsLoss}, {@code MSELoss}), as Hugging Face's GPT2ForSequenceClassification takes it.
     * Afterwards {@link #scores()} holds softmax probabilities (single label) or still the logits (the others).
     */
    public double loss(float[] hidden, int[] lengths, int[] starts, int[] classes, float[] values, int B, int T) {
        logits(hidden, lengths, starts, B, T);
        if (problem == Problem.SINGLE_LABEL) return loss(classes, B);
        int n = B * K;
        if (targetValues.length < n) targetValues = new float[n];
        System.arraycopy(values, 0, targetValues, 0, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double z = logits[i], y = values[i];
            // log(1 + e^z) - z y, written so that neither exp overflows
            sum += problem == Problem.REGRESSION ? (z - y) * (z - y) : Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
        }
        valid = n;
        return sum;
    }

    /** dhidden[B*T, C]: zero except at the pooled rows (overwritten); score's grad accumulates. */
    public void backward(float[] dhidden, int T, float scale) {
        int B = lastB;
        if (problem == Problem.SINGLE_LABEL) CrossEntropy.backward(logits, targets, B, K, 0, scale);
        else
            for (int i = 0; i < B * K; i++) { // d/dz: sigmoid(z) - y, or 2 (z - y)
                double z = logits[i], y = targetValues[i];
                logits[i] = (float) (scale * (problem == Problem.REGRESSION ? 2 * (z - y) : 1 / (1 + Math.exp(-z)) - y));
            }
        Arrays.fill(dhidden, 0, B * T * C, 0f);
        for (int b = 0; b < B; b++)
            Gemm.sgemmSerial(false, false, 1, C, K, 1f, logits, b * K, K, weight.data, weight.off, C, 0f, dhidden, rows[b] * C, C);
        if (weight.trainable()) Gemm.sgemm(true, false, K, C, B, 1f, logits, 0, K, pooled, 0, C, 1f, weight.grad(), weight.off, C);
    }
}
