package ai.wafer.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One named weight tensor of a model, stored flat in row-major order, with its gradient.
 *
 * <p>A frozen (shared) parameter has no gradient buffer and gets no optimiser state; a trainable
 * (local) one has a gradient of the same size. Names are Hugging Face's, without the
 * {@code transformer.} prefix ({@code h.0.attn.c_attn.weight}).
 *
 * <p>The values live either in a Java array ({@link #data}) or, for a frozen weight loaded with
 * {@code Checkpoint.loadFrozen}, in a read-only memory mapping of the checkpoint file: then {@code data}
 * is null, nothing is copied onto the heap, and processes that map the same file share one copy in the
 * page cache. {@link #values()} reads either kind; making a mapped parameter trainable copies it to the heap
 * first (a gradient step has to write it).
 */
public final class Parameter {
    /** How mapped float32 tensors are read: little-endian (the safetensors order) and with no alignment promise. */
    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public final String name;
    public final int[] shape;
    /** The values on the heap, or null while they are a read-only mapping. */
    public float[] data;
    /** {@link #data} as a segment, or the mapping itself. */
    private MemorySegment values;
    private float[] grad;

    public Parameter(String name, int[] shape, float[] data) {
        long n = count(shape);
        if (n != data.length)
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
        this.values = MemorySegment.ofArray(data);
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
        this.values = mapped.asReadOnly();
    }

    /** A frozen parameter whose values are {@code mapped} (little-endian float32, e.g. a slice of a mapped file). */
    public static Parameter mapped(String name, int[] shape, MemorySegment mapped) { return new Parameter(name, shape, mapped); }

    static long count(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public int size() { return (int) count(shape); }

    /** The values as a segment of little-endian floats ({@link #F32}): the heap array's or the mapping. */
    public MemorySegment values() { return values; }

    /** True while the values are a read-only mapping rather than a heap array. */
    public boolean isMapped() { return data == null; }

    /** The values in a heap array: {@link #data} itself, or a fresh copy of a mapping (for readers that need an array). */
    public float[] array() { return data != null ? data : values.toArray(F32); }

    /**
     * Moves a mapped parameter's values to the heap (a no-op for heap ones) and returns {@link #data}: for
     * writers, such as training it or merging a LoRA into it.
     */
    public float[] toHeap() {
        if (data == null) {
            data = values.toArray(F32);
            values = MemorySegment.ofArray(data);
        }
        return data;
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
