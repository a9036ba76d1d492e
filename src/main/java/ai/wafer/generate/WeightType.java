package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.F32Weights;
import ai.wafer.tensor.MappedHalfWeights;

/** How inference keeps the weight matrices in memory. */
public enum WeightType {
    F32, BF16, INT8;

    /**
     * Freezes {@code m} (inference keeps no gradients) and puts its matrices in this type, in place: the float32 values
     * are replaced, not kept beside them. Vectors, and wpe (read a row at a time), stay float32; F32 widens any other
     * storage but a mapping back to float32 (a mapped file, float32 or 16-bit, is used in place: no heap).
     */
    public void apply(Gpt m) {
        for (Parameter p : m.parameters()) p.setTrainable(false);
        applyToFrozen(m);
    }

    /**
     * The frozen matrices of {@code m} in this type, the trainable ones left float32: a PEFT method's frozen base in
     * bf16 or int8, read in that form by the forward and backward products (their gradients flow through it).
     */
    public void applyToFrozen(Gpt m) {
        for (Parameter p : m.parameters()) {
            if (p.shape.length < 2 || p == m.wpe || p.trainable()) continue;
            if (this == BF16 && !(p.weights() instanceof MappedHalfWeights h && h.bf16())) p.toBf16(); // a bf16 file stays mapped
            else if (this == INT8) p.toInt8(p != m.wte && p != m.lmHead); // Conv1D [in, out]: a scale per output column
            else if (!(p.weights() instanceof F32Weights || p.isMapped())) p.toHeap();
        }
    }

    public static WeightType parse(String s) {
        return switch (s.toLowerCase()) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "int8" -> INT8;
            default -> throw new WaferException("--dtype must be fp32, bf16 or int8, got '" + s + "'");
        };
    }
}
