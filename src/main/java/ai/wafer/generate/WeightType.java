package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.model.WeightStream;
import ai.wafer.parallel.Plan;
import ai.wafer.tensor.Bf16Weights;
import ai.wafer.tensor.F32Weights;
import ai.wafer.tensor.Int8Weights;
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
        // the heap the converted matrices take, checked before converting any (a clear error, not an OutOfMemoryError halfway)
        long need = 0, widened = 0;
        for (Parameter p : m.parameters()) {
            if (p.shape.length < 2 || p == m.wpe || p.trainable()) continue;
            boolean stays = this == BF16 ? p.weights() instanceof MappedHalfWeights h && h.bf16() : this == F32 && p.isMapped();
            if (stays || p.weights().getClass().equals(this == INT8 ? Int8Weights.class : this == BF16 ? Bf16Weights.class : F32Weights.class)) continue;
            need += (long) p.size() * (this == INT8 ? 1 : this == BF16 ? 2 : 4);
            widened = Math.max(widened, 4L * p.size()); // a matrix widened to float32 while it is converted
        }
        need += widened;
        Runtime rt = Runtime.getRuntime();
        long left = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (need > left)
            throw new WaferException("--dtype " + name().toLowerCase() + ": the model's matrices need about " + gb(need) + " of heap in that form; "
                    + "this JVM has " + gb(left) + " left of its " + gb(rt.maxMemory()) + " (raise it with WAFER_JAVA_OPTS=-Xmx..., or use int8, or fp32 from a mapped file)");
        for (Parameter p : m.parameters()) {
            if (p.shape.length < 2 || p == m.wpe || p.trainable()) continue;
            if (this == BF16 && !(p.weights() instanceof MappedHalfWeights h && h.bf16())) p.toBf16(); // a bf16 file stays mapped
            else if (this == INT8) p.toInt8(p != m.wte && p != m.lmHead); // Conv1D [in, out]: a scale per output column
            else if (!(p.weights() instanceof F32Weights || p.isMapped())) p.toHeap();
        }
        // what stayed a mapping of the file streams from disk when it exceeds the memory (WAFER_MAX_RESIDENT: the budget)
        String max = System.getenv("WAFER_MAX_RESIDENT");
        WeightStream.attach(m, max == null || max.isBlank() ? 0 : Plan.parseBytes(max));
    }

    private static String gb(long bytes) { return String.format("%.2f GB", bytes / 1e9); }

    public static WeightType parse(String s) {
        return switch (s.toLowerCase()) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "int8" -> INT8;
            default -> throw new WaferException("--dtype must be fp32, bf16 or int8, got '" + s + "'");
        };
    }
}
