package ai.wafer.model;

import ai.wafer.tensor.Bf16Weights;
import ai.wafer.tensor.F32Weights;
import ai.wafer.tensor.MappedF32Weights;
import ai.wafer.tensor.Weights;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One named weight tensor of a model, stored flat in row-major order, with its gradient.
 *
 * <p>A frozen (shared) parameter has no gradient buffer and gets no optimiser state; a trainable
 * (local) one has a gradient of the same size. Names are Hugging Face's, without the
 * {@code transformer.} prefix ({@code h.0.attn.c_attn.weight}).
 *
 * <p>The values live in a {@link Weights} storage ({@link #weights()}), the one that training and inference share:
 * a Java array ({@link F32Weights}, also reachable as {@link #data}); for a frozen weight loaded with
 * {@code Checkpoint.loadFrozen}, a read-only memory mapping of the checkpoint file ({@link MappedF32Weights}: then
 * {@code data} is null, nothing is copied onto the heap, and processes that map the same file share one copy in the
 * page cache); or, for inference in bfloat16, packed bf16 values ({@link Bf16Weights}, see {@link #toBf16()}), which
 * replace the float32 ones. {@link #values()} reads every kind as float32; making a parameter trainable moves it to
 * a heap float32 array first (a gradient step has to write it).
 */
public final class Parameter {
    public final String name;
    public final int[] shape;
    /** The values on the heap, or null while they are a read-only mapping. */
    public float[] data;
    /** Where the values live. */
    private Weights weights;
    private float[] grad;
    /** This tensor's learning rate as a multiple of the run's (µP's per-tensor rates); 1 for standard training. */
    public float lrScale = 1f;

    public Parameter(String name, int[] shape, float[] data) {
        long n = count(shape);
        if (n != data.length)
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
        this.weights = new F32Weights(data);
    }

    public Parameter(String name, int... shape) {
        this(name, shape, new float[Math.toIntExact(count(shape))]);
    }

    private Parameter(String name, int[] shape, MemorySegment mapped) {
        if (mapped.byteSize() != count(shape) * Float.BYTES)
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " needs " + count(shape) * Float.BYTES
                    + " bytes, the mapping has " + mapped.byteSize());
        this.name = name;
        this.shape = shape.clone();
        this.data = null;
        this.weights = new MappedF32Weights(mapped.asReadOnly());
    }

    /** A frozen parameter whose values are {@code mapped} (little-endian float32, e.g. a slice of a mapped file). */
    public static Parameter mapped(String name, int[] shape, MemorySegment mapped) { return new Parameter(name, shape, mapped); }

    static long count(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public int size() { return (int) count(shape); }

    /**
     * The values as a segment of little-endian floats (for writing files): the heap array's or the mapping; for a packed
     * storage (bf16) a fresh widened copy, for readers that need float32 (the products read {@link #weights()}).
     */
    public MemorySegment values() { return weights instanceof MappedF32Weights m ? m.segment() : MemorySegment.ofArray(array()); }

    /** Where the values live: the storage that the kernels ({@code ai.wafer.tensor.Kernels}) read. */
    public Weights weights() { return weights; }

    /** True while the values are a read-only mapping rather than a heap array. */
    public boolean isMapped() { return weights instanceof MappedF32Weights; }

    /** The values in a heap array: {@link #data} itself, or a fresh copy (for readers that need an array). */
    public float[] array() { return data != null ? data : weights.toFloatArray(); }

    /**
     * Moves a mapped or packed parameter's values to a heap float32 array (a no-op for heap ones) and returns
     * {@link #data}: for writers, such as training it or merging a LoRA into it.
     */
    public float[] toHeap() {
        if (data == null) {
            data = array();
            weights = new F32Weights(data);
        }
        return data;
    }

    /**
     * Replaces the values by their bfloat16 rounding ({@link Bf16Weights}), for inference: the float32 storage is
     * dropped, not kept beside it (half the bytes). Only for a frozen parameter; {@link #toHeap()} widens it back.
     */
    public void toBf16() {
        if (grad != null) throw new IllegalStateException(name + " is trainable: its values must stay float32");
        if (weights instanceof Bf16Weights) return;
        weights = Bf16Weights.of(weights);
        data = null;
    }

    /** AdamW's weight decay applies to matrices (two or more dimensions) only, not to biases or LayerNorm gains. */
    public boolean decays() { return shape.length >= 2; }

    public boolean trainable() { return grad != null; }

    /** The gradient buffer, or null when frozen. */
    public float[] grad() { return grad; }

    public void setTrainable(boolean on) {
        if (on && grad == null) grad = new float[toHeap().length];
        if (!on) grad = null;
    }

    public void zeroGrad() { if (grad != null) Arrays.fill(grad, 0f); }

    @Override public String toString() { return name + Arrays.toString(shape); }
}
