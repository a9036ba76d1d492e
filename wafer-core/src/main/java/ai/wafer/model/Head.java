package ai.wafer.model;

import ai.wafer.WaferException;

import java.util.List;
import java.util.SplittableRandom;

/**
 * A classification head on the model's final hidden states (ln_f output); its tensors have Hugging Face's names.
 * Logits are turned into probabilities by a loss, then into dlogits by the backward, in place.
 */
public abstract sealed class Head permits TokenClassifier, SequenceClassifier {
    /** The weight [K, C], initialised N(0, initStd) as Hugging Face does. */
    public final Parameter weight;
    final int C, K;
    float[] logits = new float[0], losses = new float[0];
    int[] targets = new int[0];
    int valid;

    Head(String weightName, int C, int K, float initStd, long seed) {
        this.C = C;
        this.K = K;
        weight = new Parameter(weightName, K, C);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < weight.size(); i++) weight.data[i] = (float) (r.nextGaussian() * initStd);
        weight.setTrainable(true);
    }

    /** classifier.weight/bias or score.weight: the names GPT2For*Classification gives them (no transformer. prefix). */
    public abstract List<Parameter> parameters();

    public int numLabels() { return K; }

    /** Summed cross-entropy of the first n rows of logits against labels; {@link #validTargets} counts the labelled. */
    double loss(int[] labels, int n) {
        System.arraycopy(labels, 0, targets, 0, n);
        valid = 0;
        for (int i = 0; i < n; i++) if (!CrossEntropy.ignored(labels[i])) valid++;
        return CrossEntropy.forward(logits, losses, targets, n, K);
    }

    public int validTargets() { return valid; }

    /** Logits after a forward, probabilities after a loss (either way, the argmax is the prediction). */
    public float[] scores() { return logits; }

    /**
     * A fresh head for {@code task} over {@code labels} (initialised as Hugging Face does, N(0, initializer_range)),
     * or null for causal LM, whose head is the tied wte; {@code problem} says what a sequence classifier's outputs mean.
     */
    public static Head create(Task task, GptConfig cfg, List<String> labels, long seed, SequenceClassifier.Problem problem) {
        if (problem == SequenceClassifier.Problem.REGRESSION && labels.size() != 1)
            throw new WaferException("regression takes one number per example, so one output; this model has " + labels.size() + " labels");
        if (labels.size() < 2 && task == Task.SEQUENCE_CLASSIFICATION && problem == SequenceClassifier.Problem.SINGLE_LABEL)
            throw new WaferException("sequence classification needs at least 2 labels, the training file has " + labels.size());
        if (task.classifies() && labels.isEmpty()) throw new WaferException(task + " needs labels, the training file has none");
        return switch (task) {
            case TOKEN_CLASSIFICATION -> new TokenClassifier(cfg.nEmbd(), labels.size(), cfg.initializerRange(), seed);
            case SEQUENCE_CLASSIFICATION -> new SequenceClassifier(cfg.nEmbd(), labels.size(), cfg.initializerRange(), seed, problem);
            case CAUSAL_LM -> null;
        };
    }
}
