package ai.wafer.model;

/**
 * Where a tensor-parallel rank's piece of a parameter sits in the whole tensor (Megatron's cuts): the
 * whole of it (a replicated tensor), rows [a, b) of a [rows, rowLen] matrix (a row-parallel weight, or a
 * vocabulary slice), columns [a, b) (a column-parallel weight or bias), or the same columns of each of
 * the q, k and v blocks of c_attn (this rank's heads). Rank t of n takes the t-th of n near-equal parts.
 */
record Slice(Kind kind, int a, int b, int rowLen) {
    enum Kind { WHOLE, ROWS, COLS, QKV }

    /** The whole tensor: what every parameter of an unsharded model is. */
    static final Slice WHOLE = new Slice(Kind.WHOLE, 0, 0, 0);

    /** Rank t of n's part of a tensor of {@code shape} (a vector counts as one row). */
    static Slice of(Kind kind, int[] shape, int t, int n) {
        int rows = shape.length == 1 ? 1 : shape[0], cols = shape[shape.length - 1];
        return switch (kind) {
            case WHOLE -> WHOLE;
            case ROWS -> new Slice(kind, part(rows, t, n), part(rows, t + 1, n), cols);
            case COLS -> new Slice(kind, part(cols, t, n), part(cols, t + 1, n), cols);
            case QKV -> new Slice(kind, part(cols / 3, t, n), part(cols / 3, t + 1, n), cols);
        };
    }

    /** The start of part t of n of a length: floor(len * t / n), so a vocabulary need not divide evenly. */
    static int part(int len, int t, int n) { return (int) ((long) len * t / n); }

    /** The local tensor's shape, given the whole one's. */
    int[] shape(int[] whole) {
        int w = b - a;
        return switch (kind) {
            case WHOLE -> whole.clone();
            case ROWS -> new int[]{w, rowLen};
            case COLS -> whole.length == 1 ? new int[]{w} : new int[]{whole[0], w};
            case QKV -> whole.length == 1 ? new int[]{3 * w} : new int[]{whole[0], 3 * w};
        };
    }

    /** Copies between the whole tensor's values and the local piece, in the direction asked. */
    void copy(float[] whole, float[] local, boolean toLocal) {
        int w = b - a;
        switch (kind) {
            case WHOLE -> move(whole, 0, local, 0, local.length, toLocal);
            case ROWS -> move(whole, a * rowLen, local, 0, w * rowLen, toLocal);
            case COLS -> {
                for (int i = 0, rows = whole.length / rowLen; i < rows; i++) move(whole, i * rowLen + a, local, i * w, w, toLocal);
            }
            case QKV -> { // three column blocks of width w, at a, c + a and 2c + a (c = rowLen / 3)
                int c = rowLen / 3;
                for (int i = 0, rows = whole.length / rowLen; i < rows; i++)
                    for (int part = 0; part < 3; part++) move(whole, i * rowLen + part * c + a, local, (3 * i + part) * w, w, toLocal);
            }
        }
    }

    private static void move(float[] whole, int wo, float[] local, int lo, int len, boolean toLocal) {
        if (toLocal) System.arraycopy(whole, wo, local, lo, len);
        else System.arraycopy(local, lo, whole, wo, len);
    }
}
