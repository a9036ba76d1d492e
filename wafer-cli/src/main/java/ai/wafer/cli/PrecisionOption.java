package ai.wafer.cli;

import ai.wafer.tensor.Precision;
import picocli.CommandLine.Option;

/** {@code --precision}, shared by the training commands: pretrain, finetune and bench train. */
final class PrecisionOption {
    @Option(names = "--precision", defaultValue = "fp32", paramLabel = "fp32|bf16", description = "the layer products: fp32, or bf16 mixed precision "
            + "(bf16 inputs, float32 accumulation, weights, gradients and AdamW; oneDNN where the CPU has bf16 instructions); default ${DEFAULT-VALUE}")
    Precision precision;

    /** Selects it for this process; under bf16, says on stderr which path the products take. */
    void apply() {
        String path = Precision.select(precision);
        if (path != null) System.err.println(path);
    }
}
