package ai.wafer.model;

import ai.wafer.WaferException;

import java.util.List;

/** A classification head on the model's final hidden states (ln_f output); its tensors have Hugging Face's names. */
public interface Head {
    /** classifier.weight/bias or score.weight: the names GPT2For*Classification gives them (no transformer. prefix). */
    List<Parameter> parameters();

    int numLabels();

    /**
     * A fresh head for {@code task} over {@code labels} (initialised as Hugging Face does, N(0, initializer_range)),
     * or null for causal LM, whose head is the tied wte.
     */
    static Head create(Task task, GptConfig cfg, List<String> labels, long seed) {
        if (task.classifies() && labels.size() < 2 && task == Task.SEQUENCE_CLASSIFICATION)
            throw new WaferException("sequence classification needs at least 2 labels, the training file has " + labels.size());
        if (task.classifies() && labels.isEmpty()) throw new WaferException(task + " needs labels, the training file has none");
        return switch (task) {
            case TOKEN_CLASSIFICATION -> new TokenClassifier(cfg.nEmbd(), labels.size(), cfg.initializerRange(), seed);
            case SEQUENCE_CLASSIFICATION -> new SequenceClassifier(cfg.nEmbd(), labels.size(), cfg.initializerRange(), seed);
            case CAUSAL_LM -> null;
        };
    }
}
