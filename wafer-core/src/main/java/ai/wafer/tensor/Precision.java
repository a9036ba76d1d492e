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

    /**
     * GFLOP/s of the selected precision's matrix product alone on an M x N x K layer shape, inputs already in its
     * format (bf16: oneDNN on rounded operands, without the rounding and packing a layer pays; fp32: the GEMM of
     * {@code WAFER_GEMM}): the peak a profile's products are measured against. The best of {@code reps} after warm-up.
     */
    public static double peakGflops(int M, int N, int K, int reps) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(1);
        float[] a = new float[M * K], b = new float[K * N], c = new float[M * N];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextDouble(-1, 1);
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextDouble(-1, 1);
        boolean oneDnn = selected == bf16 && Gemm.impl() == Gemm.Impl.BLAS && OneDnn.available();
        short[] pa = new short[oneDnn ? a.length : 0], pb = new short[oneDnn ? b.length : 0];
        if (oneDnn) { Bf16Weights.round(a, 0, pa, 0, a.length); Bf16Weights.round(b, 0, pb, 0, b.length); }
        long best = Long.MAX_VALUE;
        for (int i = 0; i < reps + 3; i++) {
            long t0 = System.nanoTime();
            if (oneDnn) OneDnn.gemm(false, false, M, N, K, 1f, pa, K, pb, N, 0f, c, 0, N);
            else Kernels.current().sgemm(false, false, M, N, K, 1f, a, 0, K, b, 0, N, 0f, c, 0, N);
            if (i >= 3) best = Math.min(best, System.nanoTime() - t0);
        }
        return 2.0 * M * N * K / best;
    }
}
