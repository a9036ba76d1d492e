package ai.wafer.model;

import ai.wafer.WaferException;

/** What is fine-tuned, with Hugging Face's names for the model class and PEFT's task_type. */
public enum Task {
    TOKEN_CLASSIFICATION("token-classification", "GPT2ForTokenClassification", "TOKEN_CLS"),
    SEQUENCE_CLASSIFICATION("sequence-classification", "GPT2ForSequenceClassification", "SEQ_CLS"),
    CAUSAL_LM("causal-lm", "GPT2LMHeadModel", "CAUSAL_LM");

    public final String cliName, hfArchitecture, peftTaskType;

    Task(String cliName, String hfArchitecture, String peftTaskType) {
        this.cliName = cliName;
        this.hfArchitecture = hfArchitecture;
        this.peftTaskType = peftTaskType;
    }

    public boolean classifies() { return this != CAUSAL_LM; }

    public static Task parse(String s) {
        for (Task t : values()) if (t.cliName.equals(s) || t.peftTaskType.equalsIgnoreCase(s)) return t;
        throw new WaferException("unknown task '" + s + "' (token-classification, sequence-classification, causal-lm)");
    }

    @Override public String toString() { return cliName; }
}
