package ai.wafer.data;

/**
 * One encoded example. {@code labels} (same length as {@code ids}, or null) holds a target per position
 * — a tag id for token classification, the token itself for language modelling (the model shifts) — with
 * {@link #IGNORE} where no loss is taken. A sequence-classification example has {@code labels} null and
 * its class in {@code label} ({@link #IGNORE} for a class the training file lacks); others have label -1. A multi-label
 * or regression example has, instead of a class, {@code values}: 0/1 per label, or its one real number.
 */
public record Example(int[] ids, int[] labels, int label, float[] values) {
    public Example(int[] ids, int[] labels, int label) { this(ids, labels, label, null); }

    /** Positions with this label take no loss (PyTorch's ignore_index). */
    public static final int IGNORE = -100;

    public int length() { return ids.length; }
}
