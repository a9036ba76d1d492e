package ai.wafer.parallel;

/**
 * Bytes a rank sends per collective, as the bandwidth-optimal ring algorithms send them (the model
 * NCCL's and MPI's large-message paths follow): all-reduce 2(p-1)/p of the buffer, reduce-scatter and
 * all-gather (p-1)/p of the whole buffer. Both communicators count with
 * these formulas and {@code wafer plan} predicts with them, so prediction and measurement agree by
 * construction on volume; time is what the measurement adds.
 */
public final class Traffic {
    private Traffic() {}

    public static long allReduce(long bytes, int p) { return p <= 1 ? 0 : 2 * bytes * (p - 1) / p; }

    /** {@code bytes} is the whole buffer (p chunks). */
    public static long reduceScatter(long bytes, int p) { return p <= 1 ? 0 : bytes * (p - 1) / p; }

    /** {@code bytes} is the whole buffer (p chunks). */
    public static long allGather(long bytes, int p) { return p <= 1 ? 0 : bytes * (p - 1) / p; }
}
