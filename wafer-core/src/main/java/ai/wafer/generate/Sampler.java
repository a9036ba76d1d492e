package ai.wafer.generate;

import ai.wafer.WaferException;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: repetition penalty, then greedy or temperature sampling
 * restricted by top-k, top-p and min-p (the order Hugging Face applies them in). Its random stream
 * is seeded from the parameters, so a fixed seed repeats a generation exactly. Scratch is allocated
 * once per sampler; picking a token allocates nothing.
 */
public final class Sampler {
    private final SamplingParams p;
    private final SplittableRandom rng;
    private final int V;
    private final int[] mark;   // mark[t] == epoch: token t was already penalised this step
    private int epoch;
    private final int[] idx;
    private final float[] prob;
    private final long[] keys;

    public Sampler(SamplingParams p, int vocab) {
        this.p = p;
        this.V = vocab;
        this.rng = p.seed() != null ? new SplittableRandom(p.seed()) : new SplittableRandom();
        mark = p.repetitionPenalty() != 1f ? new int[vocab] : null;
        boolean sampling = !p.isGreedy();
        idx = sampling ? new int[vocab] : null;
        prob = sampling ? new float[vocab] : null;
        keys = sampling ? new long[vocab] : null;
    }

    /**
     * The next token after logits[off, off+V), given the sequence so far history[0, n) (prompt and
     * generated tokens, for the repetition penalty). The logits are modified.
     */
    public int next(float[] logits, int off, int[] history, int n) {
        float rp = p.repetitionPenalty();
        if (rp != 1f) {
            epoch++;
            for (int j = 0; j < n; j++) {
                int t = history[j];
                if (mark[t] == epoch) continue; // once per distinct token, as in CTRL
                mark[t] = epoch;
                float x = logits[off + t];
                logits[off + t] = x > 0 ? x / rp : x * rp;
            }
        }
        if (p.isGreedy()) {
            int t = argmax(logits, off, V);
            if (!Float.isFinite(logits[off + t])) throw notFinite(); // NaN wins no comparison, so a NaN row picks its first entry
            return t;
        }
        int m = p.topK() > 0 && p.topK() < V ? topK(logits, off, p.topK()) : all();
        // softmax over the candidates at the given temperature
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < m; j++) max = Math.max(max, logits[off + idx[j]]);
        float invT = 1f / p.temperature();
        double sum = 0;
        for (int j = 0; j < m; j++) {
            float e = (float) Math.exp((logits[off + idx[j]] - max) * invT);
            prob[j] = e;
            sum += e;
        }
        if (!Double.isFinite(sum)) throw notFinite(); // a NaN or infinite logit: no distribution to sample from
        float inv = (float) (1.0 / sum);
        for (int j = 0; j < m; j++) prob[j] *= inv;
        if (p.topP() < 1f) m = nucleus(m, p.topP());
        if (p.minP() > 0f) m = minP(m, p.minP());
        double total = 0;
        for (int j = 0; j < m; j++) total += prob[j];
        double r = rng.nextDouble() * total;
        for (int j = 0; j < m; j++) {
            r -= prob[j];
            if (r < 0) return idx[j];
        }
        return idx[m - 1]; // rounding left a sliver
    }

    private static WaferException notFinite() {
        return new WaferException("the next token's probabilities are not finite: the model's logits hold NaN or infinity");
    }

    /** The index of the largest value (the first of equals), as torch.argmax. */
    public static int argmax(float[] a, int off, int n) {
        int best = 0;
        float bv = a[off];
        for (int i = 1; i < n; i++) if (a[off + i] > bv) { bv = a[off + i]; best = i; }
        return best;
    }

    private int all() {
        for (int i = 0; i < V; i++) idx[i] = i;
        return V;
    }

    /** Float bits made to order like the floats when compared as signed ints. */
    private static long sortable(float f) {
        int b = Float.floatToIntBits(f);
        return b ^ ((b >> 31) & 0x7fffffff);
    }

    /** The k largest logits' indices into idx[0, k), by a min-heap of (value, index) keys. */
    private int topK(float[] logits, int off, int k) {
        int size = 0;
        for (int i = 0; i < V; i++) {
            long key = (sortable(logits[off + i]) << 32) | (0xffffffffL & (V - 1 - i)); // lower index wins ties
            if (size < k) {
                int c = size++;
                while (c > 0 && keys[(c - 1) >> 1] > key) { keys[c] = keys[(c - 1) >> 1]; c = (c - 1) >> 1; }
                keys[c] = key;
            } else if (key > keys[0]) {
                int c = 0;
                while (true) {
                    int l = 2 * c + 1;
                    if (l >= k) break;
                    if (l + 1 < k && keys[l + 1] < keys[l]) l++;
                    if (keys[l] >= key) break;
                    keys[c] = keys[l];
                    c = l;
                }
                keys[c] = key;
            }
        }
        for (int j = 0; j < k; j++) idx[j] = V - 1 - (int) keys[j];
        return k;
    }

    /**
     * Keeps the most likely candidates whose probabilities first reach topP, sorted most likely first.
     * Sorting all V would cost milliseconds per token, so only candidates above a small threshold are
     * sorted; that is exact whenever they already sum to topP (the nucleus then lies among them).
     */
    private int nucleus(int m, float topP) {
        float threshold = 1e-4f;
        int c = collect(m, threshold);
        double mass = 0;
        for (int j = 0; j < c; j++) mass += Float.intBitsToFloat((int) (keys[j] >>> 32));
        if (mass < topP) c = collect(m, 0f);
        Arrays.sort(keys, 0, c);
        double cum = 0;
        int kept = 0;
        for (int j = c - 1; j >= 0; j--) {
            int pos = (int) keys[j];
            float pr = Float.intBitsToFloat((int) (keys[j] >>> 32));
            idx[kept] = pos; // the token id: keys are separate, so overwriting idx is safe
            prob[kept] = pr;
            kept++;
            cum += pr;
            if (cum >= topP) break;
        }
        return kept;
    }

    /** Packs candidates with prob >= threshold as (prob bits, token id) keys; returns their count. */
    private int collect(int m, float threshold) {
        int c = 0;
        for (int j = 0; j < m; j++) {
            if (prob[j] >= threshold) keys[c++] = ((long) Float.floatToIntBits(prob[j]) << 32) | idx[j];
        }
        return c;
    }

    /** Drops candidates below minP times the most likely one. */
    private int minP(int m, float minP) {
        float pmax = 0;
        for (int j = 0; j < m; j++) pmax = Math.max(pmax, prob[j]);
        float cut = minP * pmax;
        int kept = 0;
        for (int j = 0; j < m; j++) {
            if (prob[j] >= cut) { idx[kept] = idx[j]; prob[kept] = prob[j]; kept++; }
        }
        return kept;
    }
}
