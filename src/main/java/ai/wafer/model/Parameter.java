package ai.wafer.model;

import java.util.Arrays;

/**
 * One named weight tensor of a model, stored flat in row-major order, with its gradient.
 *
 * <p>A frozen (shared) parameter has no gradient buffer and gets no optimiser state; a trainable
 * (local) one has a gradient of the same size. Names are Hugging Face's, without the
 * {@code transformer.} prefix ({@code h.0.attn.c_attn.weight}).
 */
public final class Parameter {
    public final String name;
    public final int[] shape;
    public final float[] data;
    private float[] grad;

    public Parameter(String name, int[] shape, float[] data) {
        long n = 1;
        for (int d : shape) n *= d;
        if (n != data.length)
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
    }

    public Parameter(String name, int... shape) {
        this(name, shape, new float[Math.toIntExact(count(shape))]);
    }

    static long count(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public int size() { return data.length; }

    /** AdamW's weight decay applies to matrices (two or more dimensions) only, not to biases or LayerNorm gains. */
    public boolean decays() { return shape.length >= 2; }

    public boolean trainable() { return grad != null; }

    /** The gradient buffer, or null when frozen. */
    public float[] grad() { return grad; }

    public void setTrainable(boolean on) {
        if (on && grad == null) grad = new float[data.length];
        if (!on) grad = null;
    }

    public void zeroGrad() { if (grad != null) Arrays.fill(grad, 0f); }

    @Override public String toString() { return name + Arrays.toString(shape); }
}
