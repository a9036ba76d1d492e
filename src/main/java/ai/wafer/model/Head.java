package ai.wafer.model;


import java.util.List;

/** A classification head on the model's final hidden states (ln_f output); its tensors have Hugging Face's names. */
public interface Head {
    /** classifier.weight/bias or score.weight: the names GPT2For*Classification gives them (no transformer. prefix). */
    List<Parameter> parameters();

    int numLabels();
}
