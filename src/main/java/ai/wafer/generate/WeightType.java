package ai.wafer.generate;

import ai.wafer.WaferException;

/** How inference keeps the weight matrices in memory. */
public enum WeightType {
    F32, BF16, INT8;

    public static WeightType parse(String s) {
        return switch (s.toLowerCase()) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "int8" -> INT8;
            default -> throw new WaferException("--dtype must be fp32, bf16 or int8, got '" + s + "'");
        };
    }
}
