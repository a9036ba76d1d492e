package ai.wafer.model;

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

    /**
     * Stores the keys and values of T new positions length..length+T-1 of one layer, head by head, from the rows of
     * qkv[off + t * 3C, ...) (c_attn's output: q, k, v side by side). {@link #length} moves on only once every layer
     * has stored them ({@link #advance}).
     */
    void store(int layer, float[] qkv, int off, int T, int C) {
        int hs = headSize;
        for (int t = 0; t < T; t++) {
            int row = off + t * 3 * C;
            for (int h = 0; h < heads; h++) {
                int dst = (h * capacity + length + t) * hs;
                System.arraycopy(qkv, row + C + h * hs, k[layer], dst, hs);
                System.arraycopy(qkv, row + 2 * C + h * hs, v[layer], dst, hs);
            }
        }
    }

    void advance(int T) { length += T; }

    /**
     * Makes prefix tuning's P virtual tokens the first positions: {@code prompt} is PEFT's prompt_embeddings
     * [P, layers * 2 * C] (for virtual token p, layer 0's key and value, then layer 1's, ...), as Hugging Face
     * passes them in past_key_values.
     */
    public void fillPrefix(float[] prompt, int P) {
        int L = k.length, C = heads * headSize;
        if (length != 0 || P > capacity || prompt.length != P * L * 2 * C)
            throw new IllegalArgumentException("a prefix of " + P + " positions needs an empty cache and [" + P + ", " + L * 2 * C + "] values");
        for (int p = 0; p < P; p++) {
            for (int l = 0; l < L; l++) {
                int kOff = p * L * 2 * C + 2 * l * C, vOff = kOff + C;
                for (int h = 0; h < heads; h++) {
                    int dst = (h * capacity + p) * headSize;
                    System.arraycopy(prompt, kOff + h * headSize, k[l], dst, headSize);
                    System.arraycopy(prompt, vOff + h * headSize, v[l], dst, headSize);
                }
            }
        }
        length = P;
    }

    public int capacity() { return capacity; }

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
}
