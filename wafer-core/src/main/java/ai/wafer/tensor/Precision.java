package ai.wafer.tensor;

/**
 * The number format of the layer GEMMs in training ({@code --precision} on pretrain, finetune and bench train):
 * {@code fp32} throughout (the default), or {@code bf16} mixed precision ({@link Bf16Kernels}: bf16 inputs to the
 * products, float32 accumulation, float32 master weights, gradients and optimizer). One setting per process, read by
 * {@link Kernels#current}.
 */
public enum Precision {
    fp32, bf16;

    private static volatile Precision selected = fp32;

    /** Makes {@code p} the precision of every later product; returns the line saying which path runs (null for fp32). */
    public static String select(Precision p) {
        selected = p;
        return p == bf16 ? "bf16 GEMM: " + Bf16Kernels.describe() : null;
    }

    public static Precision selected() { return selected; }
}
