package ai.wafer.tensor;

import ai.wafer.WaferException;

/** The MLP nonlinearity, by Hugging Face's {@code activation_function} name. */
public enum Activation {
    GELU("gelu"), GELU_TANH("gelu_new"), RELU("relu");
    public final String hfName;
    Activation(String hfName) { this.hfName = hfName; }

    public static Activation parse(String s, String where) {
        return switch (s) {
            case "gelu" -> GELU;
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> GELU_TANH;
            case "relu" -> RELU;
            default -> throw new WaferException(where + ": unknown activation_function '" + s
                    + "' (known: gelu, gelu_new, gelu_pytorch_tanh, relu)");
        };
    }
}
