package ai.wafer.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Where a weight tensor's values live, shared by training and inference: flat, row-major, one class per
 * element type and place. {@link F32Weights} is float32 on the heap (what training writes), {@link MappedF32Weights}
 * float32 in a segment (a read-only mapping of a checkpoint file), {@link Bf16Weights} bfloat16 packed on the heap,
 * {@link Int8Weights} int8 with a scale per output channel or per group of inputs (heap or mapped), {@link MappedHalfWeights} fp16 in a mapped file; {@link Bf16Weights} serves bf16 on the heap or mapped.
 *
 * <p>Matrix products take a storage, through {@link Kernels}: the GEMM ({@link Kernels#matmul}) for training and
 * prefill, and {@link #decode} for a few rows at a time (decoding, bound by memory bandwidth), which every storage
 * runs in its own layout: on a Hugging Face Conv1D weight stored [in, out] as it is, and on [out, in] rows for the
 * LM head, with no transposed copy. A new element type (fp16, int8, bf16 mapped from a file) is one more class here,
 * with its {@link #decode}, {@link #read} and a packing case in the GEMM ({@link Kernels} switches over this sealed
 * type, so the compiler lists the places).
 */
public sealed interface Weights permits F32Weights, MappedF32Weights, MappedHalfWeights, Bf16Weights, Int8Weights {
    /** Number of values. */
    long size();

    /** Bytes the values occupy. */
    long bytes();

    /** True when the values are a read-only mapping of a file (no heap), not an array of their own. */
    default boolean mapped() { return false; }

    /** The region of a mapped file the values are read from (to page it in or out: weight streaming); null when not mapped. */
    default MemorySegment mapping() { return null; }

    /** Value i, widened to float. */
    float get(long i);

    /** dst[off, off + n) = values [from, from + n), widened to float. */
    void read(long from, float[] dst, int off, int n);

    /**
     * The decode product for n (a few) input rows: out[i, j] = sum_k x[i, k] * op(W)[k, j] for i < n, j < N,
     * with x [n, K] and out [n, N] row-major (a bias is the caller's). {@code rows == false}: W is stored [K, N] (a Conv1D
     * weight, [in, out]); {@code rows == true}: W is stored [N, K] (one row per output, as the LM head). Multithreaded
     * over blocks of outputs; each weight value is read once for all n rows.
     */
    void decode(boolean rows, int n, int N, int K, float[] x, float[] out);

    /** The storage of a heap array (shared, not copied). */
    static Weights of(float[] values) { return new F32Weights(values, 0, values.length); }

    /** A segment of little-endian float32 values: a heap segment over a float[] becomes {@link F32Weights}. */
    static Weights of(MemorySegment values) {
        if (values.heapBase().orElse(null) instanceof float[] a && values.address() == 0 && values.byteSize() == 4L * a.length)
            return new F32Weights(a, 0, a.length);
        return new MappedF32Weights(values);
    }

    /** All values widened into a fresh heap array. */
    default float[] toFloatArray() {
        float[] a = new float[Math.toIntExact(size())];
        int chunk = 1 << 16;
        Parallel.forRange((a.length + chunk - 1) / chunk, (t, from, to) -> {
            for (int c = from; c < to; c++) {
                int o = c * chunk;
                read(o, a, o, Math.min(chunk, a.length - o));
            }
        });
        return a;
    }
}
