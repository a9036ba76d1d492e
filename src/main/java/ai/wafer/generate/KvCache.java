package ai.wafer.generate;

/**
 * The keys and values one sequence has produced so far, per layer, laid out [head, position, headSize]
 * so that a head's keys are contiguous for the attention dot products. Sized once for the longest
 * sequence it will hold; {@link #length} is how many positions are filled.
 */
public final class KvCache {
    final float[][] k, v;
    final int capacity, headSize, heads;
    int length;

    public KvCache(int layers, int heads, int headSize, int capacity) {
        this.capacity = capacity;
        this.headSize = headSize;
        this.heads = heads;
        k = new float[layers][heads * capacity * headSize];
        v = new float[layers][heads * capacity * headSize];
    }

    public int length() { return length; }

    public int capacity() { return capacity; }

    /** Forgets positions from {@code n} on (the next token goes to position n). */
    public void truncate(int n) {
        if (n < 0 || n > length) throw new IllegalArgumentException("cannot truncate a cache of " + length + " to " + n);
        length = n;
    }

    /** Becomes a copy of src's filled positions (beam search reorders beams this way). */
    public void copyFrom(KvCache src) {
        int n = src.length * headSize;
        for (int l = 0; l < k.length; l++) {
            for (int h = 0; h < heads; h++) {
                int so = h * src.capacity * headSize, o = h * capacity * headSize;
                System.arraycopy(src.k[l], so, k[l], o, n);
                System.arraycopy(src.v[l], so, v[l], o, n);
            }
        }
        length = src.length;
    }

    public long bytes() { return 8L * k.length * k[0].length; }
}
