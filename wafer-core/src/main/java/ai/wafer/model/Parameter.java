package ai.wafer.model;

import ai.wafer.tensor.Bf16Weights;
import ai.wafer.tensor.F32Weights;
import ai.wafer.tensor.Int8Weights;
import ai.wafer.tensor.MappedF32Weights;
import ai.wafer.tensor.Parallel;
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
 * a Java array ({@link F32Weights}, also reachable as {@link #data} from {@link #off}: a trainable parameter's slice of
 * its rank's {@link FlatStore} while training); for a frozen weight loaded with
 * {@code Checkpoint.loadFrozen}, a read-only memory mapping of the checkpoint file ({@link MappedF32Weights}: then
 * {@code data} is null, nothing is copied onto the heap, and processes that map the same file share one copy in the
 * page cache); or, for inference in bfloat16, packed bf16 values ({@link Bf16Weights}, see {@link #toBf16()}), which
 * replace the float32 ones. {@link #values()} reads every kind as float32; making a parameter trainable moves it to
 * a heap float32 array first (a gradient step has to write it).
 */
public final class Parameter {
    public final String name;
    public final int[] shape;
    /**
     * The values on the heap are data[off, off + size()): the parameter's own array (off 0), or its slice of a
     * {@link FlatStore}; null while they are a read-only mapping or packed bf16. The gradient sits at the same
     * offset of {@link #grad()}.
     */
    public float[] data;
    public int off;
    /** Where the values live. */
    private Weights weights;
    /** The gradient is grad[off, off + size()), null when frozen. */
    private float[] grad;
    /** A {@link #zeroGrad} not carried out yet: grad's values are stale and count as zero. */
    private volatile boolean zeroPending;
    /** This tensor's learning rate as a multiple of the run's (µP's per-tensor rates); 1 for standard training. */
    public float lrScale = 1f;

    public Parameter(String name, int[] shape, float[] data) {
        long n = count(shape);
        if (n != data.length)
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
        this.weights = new F32Weights(data, 0, data.length);
    }

    public Parameter(String name, int... shape) {
        this(name, shape, new float[Math.toIntExact(count(shape))]);
    }

    private Parameter(String name, int[] shape, Weights mapped) {
        if (mapped.size() != count(shape))
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " needs " + count(shape) + " values, the mapping has " + mapped.size());
        this.name = name;
        this.shape = shape.clone();
        this.data = null;
        this.weights = mapped;
    }

    /** A frozen parameter whose values are {@code mapped} in place (e.g. a tensor of a mapped file, float32 or 16-bit). */
    public static Parameter mapped(String name, int[] shape, Weights mapped) { return new Parameter(name, shape, mapped); }

    static long count(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public int size() { return (int) count(shape); }

    /**
     * The values as a segment of little-endian floats (for writing files): the heap slice or the mapping; for a packed
     * storage (bf16) a fresh widened copy, for readers that need float32 (the products read {@link #weights()}).
     */
    public MemorySegment values() {
        if (weights instanceof MappedF32Weights m) return m.segment();
        return data != null ? MemorySegment.ofArray(data).asSlice(4L * off, 4L * size()) : MemorySegment.ofArray(array());
    }

    /** Where the values live: the storage that the kernels ({@code ai.wafer.tensor.Kernels}) read. */
    public Weights weights() { return weights; }

    /** True while the values are a read-only mapping rather than a heap array. */
    public boolean isMapped() { return weights.mapped(); }

    /** Value i (for the few readers that index one value; the kernels read {@link #data} at {@link #off}). */
    public float get(int i) { return data != null ? data[off + i] : weights.get(i); }

    /** The values in an array of their own: {@link #data} when the parameter owns it whole, else a fresh copy. */
    public float[] array() {
        if (data != null && off == 0 && data.length == size()) return data;
        return data != null ? Arrays.copyOfRange(data, off, off + size()) : weights.toFloatArray();
    }

    /**
     * Moves a mapped or packed parameter's values to a heap float32 array of its own (a no-op for heap ones): for
     * writers, such as training it or merging a LoRA into it, which then write {@link #data} at {@link #off}.
     */
    public void toHeap() {
        if (data == null) {
            data = array();
            off = 0;
            weights = new F32Weights(data, 0, data.length);
        }
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

    /**
     * Replaces the values of this matrix by int8 with scales per column ({@code perColumn}: a Conv1D weight [in, out])
     * or per row (the head and embedding [V, C]), per {@code group} inputs (0: one per channel), for inference, as
     * {@link #toBf16()}. An int8 storage stays as it is.
     */
    public void toInt8(boolean perColumn, int group) {
        if (grad != null) throw new IllegalStateException(name + " is trainable: its values must stay float32");
        if (weights instanceof Int8Weights) return;
        weights = Int8Weights.of(weights, shape[0], shape[1], perColumn, group);
        data = null;
    }

    /** Moves the values and the gradient into slices of a {@link FlatStore}'s buffers (copied there first). */
    void bind(float[] values, int at, float[] grads) {
        System.arraycopy(data, off, values, at, size());
        System.arraycopy(grad(), off, grads, at, size());
        data = values;
        off = at;
        weights = new F32Weights(values, at, size());
        grad = grads;
    }

    /** AdamW's weight decay applies to matrices (two or more dimensions) only, not to biases or LayerNorm gains. */
    public boolean decays() { return shape.length >= 2; }

    public boolean trainable() { return grad != null; }

    /** The array that holds the gradient at {@link #off}, or null when frozen (zeroed first if {@link #zeroGrad} is pending). */
    public float[] grad() {
        if (zeroPending) materializeZero();
        return grad;
    }

    /**
     * True when the gradient is zero by a pending {@link #zeroGrad} that has not been carried out: the caller takes it
     * over and must write all of grad[off, off + size()) now (a weight-gradient product with beta 0, which then need
     * not read the old values either). False (add to it) otherwise, and always once claimed.
     */
    public boolean claimZeroGrad() {
        if (!zeroPending) return false;
        synchronized (this) {
            boolean z = zeroPending;
            zeroPending = false;
            return z;
        }
    }

    private synchronized void materializeZero() {
        if (!zeroPending) return;
        if (grad == null) { // frozen since
            zeroPending = false;
            return;
        }
        float[] g = grad;
        int o = off;
        Parallel.forElements(size(), (w, from, to) -> Arrays.fill(g, o + from, o + to, 0f));
        zeroPending = false; // after the fill: a thread that reads false sees zeros
    }

    /** The gradient in an array of its own (a copy when it is a slice), for checks. */
    public float[] gradArray() {
        float[] g = grad();
        return off == 0 && g.length == size() ? g : Arrays.copyOfRange(g, off, off + size());
    }

    public void setTrainable(boolean on) {
        if (on && grad == null) {
            if (weights instanceof Int8Weights q && q.mapped()) // never silently: training it needs its float values
                System.err.println("wafer: " + name + " is stored int8 in the model file; trained, so dequantized to float32 on the heap");
            toHeap();
            grad = new float[data.length]; // at the values' offset
        }
        if (!on) grad = null;
    }

    /**
     * Zeroes the gradient, lazily: the first writer of the next backward either claims it ({@link #claimZeroGrad}: a
     * weight-gradient product then writes instead of adding, as PyTorch's {@code zero_grad(set_to_none=True)}) or
     * reads {@link #grad()}, which zeroes it then, over the cores. (Filling 444 MB at 111M took 75 ms on one thread, 30
     * on two, 2-4% of a step, and every product then read the zeros back.)
     */
    public void zeroGrad() { if (grad != null) zeroPending = true; }

    @Override public String toString() { return name + Arrays.toString(shape); }
}
