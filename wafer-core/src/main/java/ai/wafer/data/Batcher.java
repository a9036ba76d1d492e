package ai.wafer.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/**
 * Groups examples into padded batches.
 *
 * <p>Each example is cut to {@code maxLength} tokens (its first tokens are kept) and padded with {@code padId}
 * to the longest example of its batch (mask 0, label {@link Example#IGNORE}), so a batch is only as long as it
 * needs to be: on the right by default, or on the left ({@link Side#LEFT}, as Hugging Face's
 * {@code padding_side="left"}); the model then masks the pads and numbers positions from each row's first real
 * token ({@code Batch.starts}), so either side gives the same results. Length bucketing keeps padding small: without shuffling, examples are
 * sorted by length and cut into batches; with shuffling, the examples are shuffled, taken in pools of
 * {@link #POOL_BATCHES} batches, each pool sorted by length and cut into batches, and the batch order is
 * shuffled again, so batches stay random but hold examples of similar length.
 */
public final class Batcher {
    /**
     * A padded batch, row-major [size][length]. {@code mask} is 1 on real tokens; {@code labels} holds the
     * per-token labels (null when examples have none), {@code classes} the sequence labels (null when none),
     * {@code values} [size, K] the multi-label or regression targets (null when none);
     * {@code examples} are the indices of the rows' examples in the list given to the batcher;
     * {@code lengths} the rows' unpadded lengths; {@code starts} where each row's real tokens begin (0 when
     * right-padded, the number of pads when left-padded): what the model's left padding takes.
     */
    public record Batch(int size, int length, int[] ids, int[] mask, int[] labels, int[] classes, float[] values,
                        int[] lengths, int[] examples, int[] starts) {
        /** Position of row r's last real token within the row. */
        public int last(int r) { return starts[r] + Math.max(lengths[r], 1) - 1; }

        /** Rows [lo, hi) as a batch of the same length (a data-parallel rank's share; padding stays as it is). */
        public Batch rows(int lo, int hi) {
            int T = length;
            return new Batch(hi - lo, T, Arrays.copyOfRange(ids, lo * T, hi * T), Arrays.copyOfRange(mask, lo * T, hi * T),
                    labels == null ? null : Arrays.copyOfRange(labels, lo * T, hi * T),
                    classes == null ? null : Arrays.copyOfRange(classes, lo, hi),
                    values == null ? null : Arrays.copyOfRange(values, lo * values.length / size, hi * values.length / size),
                    Arrays.copyOfRange(lengths, lo, hi), Arrays.copyOfRange(examples, lo, hi), Arrays.copyOfRange(starts, lo, hi));
        }
    }

    public static final int POOL_BATCHES = 50;

    /** Where the pads go. */
    public enum Side {
        LEFT, RIGHT;

        public static Side parse(String s) {
            return switch (s) {
                case "left" -> LEFT;
                case "right" -> RIGHT;
                default -> throw new ai.wafer.WaferException("padding side must be left or right, got '" + s + "'");
            };
        }
    }

    private final int batchSize, maxLength, padId;
    private final Side side;

    public Batcher(int batchSize, int maxLength, int padId) { this(batchSize, maxLength, padId, Side.RIGHT); }

    public Batcher(int batchSize, int maxLength, int padId, Side side) {
        if (batchSize < 1 || maxLength < 1) throw new IllegalArgumentException("batch size and max length must be >= 1");
        this.batchSize = batchSize;
        this.maxLength = maxLength;
        this.padId = padId;
        this.side = side;
    }

    /** All examples in length-bucketed batches (see the class comment); the last batch may be smaller. */
    public List<Batch> batches(List<Example> examples, boolean shuffle, long seed) {
        Integer[] order = new Integer[examples.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Comparator<Integer> byLength = Comparator.comparingInt(i -> Math.min(examples.get(i).length(), maxLength));
        Random rng = new Random(seed);
        if (shuffle) {
            shuffle(order, rng);
            int pool = POOL_BATCHES * batchSize;
            for (int from = 0; from < order.length; from += pool) Arrays.sort(order, from, Math.min(order.length, from + pool), byLength);
        } else {
            Arrays.sort(order, byLength);
        }
        List<Batch> out = new ArrayList<>();
        for (int from = 0; from < order.length; from += batchSize) {
            int to = Math.min(order.length, from + batchSize);
            int[] idx = new int[to - from];
            for (int i = 0; i < idx.length; i++) idx[i] = order[from + i];
            out.add(batch(examples, idx));
        }
        if (shuffle) java.util.Collections.shuffle(out, rng);
        return out;
    }

    /** One padded batch of {@code examples[idx[0]], examples[idx[1]], ...}. */
    public Batch batch(List<Example> examples, int[] idx) {
        int b = idx.length, t = 1;
        boolean tokenLabels = false, classes = false;
        for (int i : idx) {
            Example e = examples.get(i);
            t = Math.max(t, Math.min(e.length(), maxLength));
            tokenLabels |= e.labels() != null;
            classes |= e.labels() == null; // sequence-classification examples carry a class instead
        }
        int[] ids = new int[b * t], mask = new int[b * t], lengths = new int[b], starts = new int[b];
        int[] labels = tokenLabels ? new int[b * t] : null, cls = classes ? new int[b] : null;
        float[] first = examples.get(idx[0]).values(), values = first == null ? null : new float[b * first.length];
        Arrays.fill(ids, padId);
        if (labels != null) Arrays.fill(labels, Example.IGNORE);
        for (int r = 0; r < b; r++) {
            Example e = examples.get(idx[r]);
            int n = Math.min(e.length(), maxLength);
            lengths[r] = n;
            starts[r] = side == Side.LEFT ? t - n : 0;
            int o = r * t + starts[r];
            System.arraycopy(e.ids(), 0, ids, o, n);
            Arrays.fill(mask, o, o + n, 1);
            if (labels != null && e.labels() != null) System.arraycopy(e.labels(), 0, labels, o, n);
            if (cls != null) cls[r] = e.label();
            if (values != null) System.arraycopy(e.values(), 0, values, r * first.length, first.length);
        }
        return new Batch(b, t, ids, mask, labels, cls, values, lengths, idx.clone(), starts);
    }

    private static void shuffle(Integer[] a, Random rng) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            Integer x = a[i]; a[i] = a[j]; a[j] = x;
        }
    }
}
