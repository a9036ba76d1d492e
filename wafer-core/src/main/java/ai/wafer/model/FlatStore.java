package ai.wafer.model;

import ai.wafer.WaferException;

import java.util.ArrayList;
import java.util.List;

/**
 * The trainable parameters of one rank as slices of two buffers, {@link #values} and {@link #grads} (llm.c's
 * params_memory and grads_memory): the optimiser walks one array, and the data-parallel exchange works on the
 * buffers in place.
 *
 * <p>Parameters are laid out in reverse order (the order backward finishes their gradients) and grouped into
 * buckets of about {@code bucketBytes}, each padded to a multiple of the group size p so that it splits into p
 * equal chunks: a bucket is all-reduced as one slice as soon as its gradients are final, and with ZeRO-1 rank r
 * owns chunk r of every bucket (its moments and its update), which spreads ownership evenly however the
 * parameters are sized. The padding stays zero. One process is one bucket with p = 1.
 */
public final class FlatStore {
    /** Parameters [first, end) of {@link #params}, at values/grads [from, from + length), padded to chunk * p. */
    public record Bucket(int from, int length, int chunk, int first, int end) {}

    public final float[] values, grads;
    /** The trainable parameters in store order, parameter i at {@code at[i]}. */
    public final List<Parameter> params = new ArrayList<>();
    public final int[] at;
    public final List<Bucket> buckets = new ArrayList<>();
    /** Unpadded trainable elements. */
    public final long elements;

    /** One bucket over every trainable parameter of {@code all}: the one-process layout. */
    public static FlatStore of(List<Parameter> all) { return new FlatStore(all, Long.MAX_VALUE, 1); }

    /** Binds the trainable parameters of {@code all} to a new store (their values and gradients are copied in). */
    public FlatStore(List<Parameter> all, long bucketBytes, int p) {
        for (int i = all.size() - 1; i >= 0; i--) if (all.get(i).trainable()) params.add(all.get(i));
        at = new int[params.size()];
        long pos = 0, n = 0;
        int first = 0, length = 0;
        for (int i = 0; i < params.size(); i++) {
            int size = params.get(i).size();
            if (length > 0 && 4L * (length + size) > bucketBytes) {
                pos = close(pos, first, i, length, p);
                first = i;
                length = 0;
            }
            at[i] = (int) (pos + length);
            length += size;
            n += size;
        }
        if (length > 0) pos = close(pos, first, params.size(), length, p);
        if (pos > Integer.MAX_VALUE - 64)
            throw new WaferException(n + " trainable values do not fit one Java array (2^31): train fewer parameters per "
                    + "rank (tensor or pipeline parallelism, or a PEFT method)");
        elements = n;
        values = new float[(int) pos];
        grads = new float[(int) pos];
        for (int i = 0; i < params.size(); i++) params.get(i).bind(values, at[i], grads);
    }

    private long close(long pos, int first, int end, int length, int p) {
        int chunk = (length + p - 1) / p;
        buckets.add(new Bucket((int) pos, length, chunk, first, end));
        return pos + (long) chunk * p;
    }

    /**
     * Carries out the pending {@link Parameter#zeroGrad} of parameters [first, end) (those no backward wrote this
     * step): for the collectives that read {@link #grads} directly rather than through {@link Parameter#grad()}.
     */
    public void materializeZeros(int first, int end) { for (int i = first; i < end; i++) params.get(i).grad(); }

    /** {@link #materializeZeros} of every parameter. */
    public void materializeZeros() { materializeZeros(0, params.size()); }
}
