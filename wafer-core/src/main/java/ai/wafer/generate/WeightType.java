package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.model.WeightStream;
import ai.wafer.parallel.Plan;
import ai.wafer.tensor.Bf16Weights;
import ai.wafer.tensor.F32Weights;
import ai.wafer.tensor.Int8Weights;

/**
 * How inference keeps the weight matrices in memory: fp32, bf16, or int8 with a scale per output channel
 * ({@code groupSize} 0) or per output channel and group of {@code groupSize} inputs.
 */
public record WeightType(Kind kind, int groupSize) {
    public enum Kind { F32, BF16, INT8 }

    public static final WeightType F32 = new WeightType(Kind.F32, 0), BF16 = new WeightType(Kind.BF16, 0), INT8 = new WeightType(Kind.INT8, 0);

    public WeightType {
        if (kind != Kind.INT8 && groupSize != 0) throw new WaferException("--group-size " + groupSize + " is for int8 only, not " + (kind == Kind.F32 ? "fp32" : "bf16"));
        if (!Int8Weights.validGroup(groupSize))
            throw new WaferException("--group-size " + groupSize + " must be 0 (a scale per output channel) or a positive multiple of 16 (32, 64, 128)");
    }

    /** fp32, bf16 or int8, as the options spell it. */
    public String name() { return kind.name(); }

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
     * bf16 or int8, read in that form by the forward and backward products (their gradients flow through it). An int8
     * file's matrices stay as stored for int8 (whatever {@code groupSize}: said on stderr when one given differs) and are
     * dequantized for fp32 or bf16, saying so.
     */
    public void applyToFrozen(Gpt m) {
        // the memory the converted matrices take, checked before converting any (a clear error, not an OutOfMemoryError
        // halfway): float32 on the heap; bf16 and int8 off it, as a mapped file's (plus one matrix widened on the heap)
        long need = 0, widened = 0;
        int fileGroup = -1; // the group size of an int8 file's matrices, -1 when there are none
        for (Parameter p : m.parameters()) {
            if (p.shape.length < 2 || p == m.wpe || p.trainable()) continue;
            if (p.weights() instanceof Int8Weights q && q.mapped()) fileGroup = q.groupSize();
            boolean stays = kind == Kind.BF16 ? p.weights() instanceof Bf16Weights
                    : kind == Kind.F32 ? p.isMapped() && !(p.weights() instanceof Int8Weights) : p.weights() instanceof Int8Weights;
            if (stays || p.weights().getClass().equals(kind == Kind.BF16 ? Bf16Weights.class : F32Weights.class)) continue;
            need += (long) p.size() * (kind == Kind.INT8 ? 1 : kind == Kind.BF16 ? 2 : 4);
            widened = Math.max(widened, 4L * p.size()); // a matrix widened to float32 while it is converted
        }
        Runtime rt = Runtime.getRuntime();
        long heap = kind == Kind.F32 ? need + widened : widened, left = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (heap > left)
            throw new WaferException("--dtype " + name().toLowerCase() + ": converting the model's matrices needs about " + gb(heap) + " of heap; "
                    + "this JVM has " + gb(left) + " left of its " + gb(rt.maxMemory()) + " (raise it with WAFER_JAVA_OPTS=-Xmx..., or use int8, or fp32 from a mapped file)");
        long free = ai.wafer.model.WeightStream.memAvailable();
        if (kind != Kind.F32 && need > free)
            throw new WaferException("--dtype " + name().toLowerCase() + ": the model's matrices need about " + gb(need) + " of memory in that form; "
                    + "this machine has " + gb(free) + " available (convert the file once with wafer convert --dtype " + name().toLowerCase()
                    + ": a converted file is mapped and streamed from disk where it does not fit)");
        if (fileGroup >= 0 && kind != Kind.INT8)
            System.err.println("wafer: the model file stores its matrices int8; " + (kind == Kind.F32 ? "fp32" : "bf16") + " (as asked) dequantizes them onto the heap");
        if (fileGroup >= 0 && kind == Kind.INT8 && groupSize != 0 && fileGroup != groupSize) // 0 is the option's default
            System.err.println("wafer: the model file stores its matrices int8 with group size " + fileGroup + "; used as stored, not requantized to --group-size " + groupSize);
        int group = groupSize == 0 && fileGroup > 0 ? fileGroup : groupSize; // a matrix merged with an adapter: as the file's
        for (Parameter p : m.parameters()) {
            if (p.shape.length < 2 || p == m.wpe || p.trainable()) continue;
            if (kind == Kind.BF16 && !(p.weights() instanceof Bf16Weights)) p.toBf16(); // a bf16 file stays mapped
            else if (kind == Kind.INT8) p.toInt8(ai.wafer.io.Checkpoint.int8PerColumn(p.name), group); // Conv1D [in, out]: scales per output column
            else if (kind == Kind.F32 && !(p.weights() instanceof F32Weights || p.isMapped() && !(p.weights() instanceof Int8Weights))) p.toHeap();
        }
        // what stayed a mapping of the file streams from disk when it exceeds the memory (WAFER_MAX_RESIDENT: the budget)
        String max = System.getenv("WAFER_MAX_RESIDENT");
        WeightStream.attach(m, max == null || max.isBlank() ? 0 : Plan.parseBytes(max));
    }

    private static String gb(long bytes) { return String.format("%.2f GB", bytes / 1e9); }

    public static WeightType parse(String s) { return parse(s, 0); }

    /**
     * {@code --dtype s --group-size groupSize} for the model in {@code dir}; s null (the option not given): int8 as
     * stored for a model file stored int8, else fp32.
     */
    public static WeightType parse(String s, int groupSize, java.nio.file.Path dir) {
        return parse(s != null ? s : ai.wafer.io.Checkpoint.int8GroupSize(dir) >= 0 ? "int8" : "fp32", groupSize);
    }

    /** {@code --dtype s --group-size groupSize}. */
    public static WeightType parse(String s, int groupSize) {
        WeightType t = switch (s.toLowerCase()) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "int8" -> INT8;
            default -> throw new WaferException("--dtype must be fp32, bf16 or int8, got '" + s + "'");
        };
        return groupSize == 0 ? t : new WeightType(t.kind, groupSize);
    }
}
