package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.model.Attention;
import ai.wafer.model.Gelu;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.LayerNorm;
import ai.wafer.model.Linear;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Kernels;
import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.Weights;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A GPT model run for generation: the model's own weights (its parameters' {@link Weights} storages, read in their
 * training layout, nothing transposed or copied) and layer kernels ({@link Linear}, {@link LayerNorm}, {@link Gelu},
 * the cached forwards of {@link Attention}), with a forward pass that extends a {@link KvCache} instead of
 * recomputing the sequence. A prompt goes through {@link #prefill} in one batched pass (GEMMs over all its
 * positions); then each new token costs one {@link #decode} step, which can advance several sequences at once so
 * the weights are streamed from memory once for all of them.
 *
 * <p>{@link WeightType#BF16} converts the model's matrices (and the embedding that is the LM head) to bfloat16 in
 * place, once: their float32 values are replaced, not kept beside them, so the {@link Gpt} itself then holds bf16
 * weights (a trainable parameter, whose values training must keep, is converted into a separate copy instead).
 * {@link WeightType#F32} widens any bf16 storage back to float32.
 *
 * <p>The scratch buffers belong to the model, so one thread uses it at a time (methods are synchronized).
 */
public final class InferenceModel {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    /** Prompt positions per prefill pass: large enough for efficient GEMMs, small enough to bound scratch. */
    private static final int CHUNK = 512;

    private record Layer(float[] ln1W, float[] ln1B, Weights qkv, float[] qkvB, Weights proj, float[] projB,
                         float[] ln2W, float[] ln2B, Weights fc, float[] fcB, Weights mlp, float[] mlpB) {}

    public final GptConfig config;
    public final WeightType type;
    private final int C, H, hs, F, V;
    private final float eps, scale;
    private final GptConfig.Activation act;
    /** The token embedding wte [V, C] and the LM head [V, C] (the same storage when tied). */
    private final Weights embed, head;
    private final float[] wpe, lnfW, lnfB;
    private final Layer[] layers;
    private final float[][] scores;
    /** Per-worker [T, P] score blocks of the prefill attention, grown on demand. */
    private final float[][] pscores = new float[Parallel.threads()][];

    // decode scratch for up to capN sequences
    private int capN;
    private float[] x, xn, qkv, att, hid, mean, rstd;
    // prefill scratch (CHUNK positions), allocated on first use
    private float[] px, pxn, pqkv, patt, phid, pmean, prstd;

    public InferenceModel(Gpt m, WeightType type) {
        GptConfig c = m.config;
        this.config = c;
        this.type = type;
        C = c.nEmbd(); H = c.nHead(); hs = c.headSize(); F = c.nInner(); V = c.vocabSize();
        eps = c.layerNormEpsilon();
        scale = c.scaleAttnWeights() ? (float) (1.0 / Math.sqrt(hs)) : 1f;
        act = c.activation();
        embed = matrix(m.wte, type);
        head = m.lmHead == m.wte ? embed : matrix(m.lmHead, type);
        wpe = m.wpe.array();
        lnfW = m.lnfW.array();
        lnfB = m.lnfB.array();
        layers = new Layer[m.h.length];
        for (int l = 0; l < layers.length; l++) {
            Gpt.Block b = m.h[l];
            layers[l] = new Layer(b.ln1W().array(), b.ln1B().array(), matrix(b.attnW(), type), b.attnB().array(),
                    matrix(b.attnProjW(), type), b.attnProjB().array(), b.ln2W().array(), b.ln2B().array(),
                    matrix(b.fcW(), type), b.fcB().array(), matrix(b.mlpProjW(), type), b.mlpProjB().array());
        }
        scores = new float[Parallel.threads()][c.nPositions()];
    }

    /** A weight matrix's storage in {@code type}: converted in place (bf16) or widened back (f32) when it differs. */
    private static Weights matrix(Parameter p, WeightType type) {
        boolean bf16 = p.weights() instanceof ai.wafer.tensor.Bf16Weights;
        if (type == WeightType.BF16 && !bf16) {
            if (p.trainable()) return ai.wafer.tensor.Bf16Weights.of(p.weights());
            p.toBf16();
        } else if (type == WeightType.F32 && bf16) {
            p.toHeap();
        }
        return p.weights();
    }

    public int vocabSize() { return V; }

    /**
     * Puts prefix-tuning's virtual tokens in front of every sequence: {@code prompt} is PEFT's
     * {@code prompt_embeddings} [P, L * 2 * C] (for virtual token p, layer 0's key and value, then layer 1's, ...).
     * Each new cache starts with them as its first P positions, so every token attends to them and the text's
     * positions start at P, as with Hugging Face's past_key_values; the text's room shrinks to n_positions - P.
     */
    public void setPrefix(float[] prompt, int P) {
        if (P < 0 || P >= config.nPositions() || prompt.length != P * layers.length * 2 * C)
            throw new WaferException("a prefix of " + P + " virtual tokens needs [" + P + ", " + layers.length * 2 * C
                    + "] values and fewer than n_positions " + config.nPositions() + " tokens");
        prefix = prompt.clone();
        prefixLength = P;
    }

    private float[] prefix;
    private int prefixLength;

    /** Tokens a sequence may hold: n_positions, less a prefix's virtual tokens. */
    public int contextLength() { return config.nPositions() - prefixLength; }

    /** A cache for a sequence of up to {@code capacity} tokens (at most {@link #contextLength}), holding the prefix if any. */
    public KvCache newCache(int capacity) {
        if (capacity <= 0 || capacity > contextLength())
            throw new WaferException("sequence length " + capacity + " must be in [1, " + contextLength() + "] (the model's n_positions"
                    + (prefixLength > 0 ? " less a prefix of " + prefixLength : "") + ")");
        KvCache c = new KvCache(layers.length, H, hs, capacity + prefixLength);
        for (int p = 0; p < prefixLength; p++) {
            for (int l = 0; l < layers.length; l++) {
                int kOff = p * layers.length * 2 * C + 2 * l * C, vOff = kOff + C;
                for (int h = 0; h < H; h++) {
                    int dst = (h * c.capacity + p) * hs;
                    System.arraycopy(prefix, kOff + h * hs, c.k[l], dst, hs);
                    System.arraycopy(prefix, vOff + h * hs, c.v[l], dst, hs);
                }
            }
        }
        c.length = prefixLength;
        return c;
    }

    /** Bytes of weights one decode step reads: every matrix once, plus the small vectors. */
    public long weightBytesPerToken() {
        long n = head.bytes();
        for (Layer l : layers) n += l.qkv.bytes() + l.proj.bytes() + l.fc.bytes() + l.mlp.bytes() + 4L * (3 * C + 6 * C + F);
        return n;
    }

    private void checkToken(int tok) {
        if (tok < 0 || tok >= V) throw new WaferException("token id " + tok + " is outside the vocabulary [0, " + V + ")");
    }

    private void checkRoom(KvCache c, int more) {
        if (c.length + more > c.capacity)
            throw new WaferException("sequence of " + (c.length + more) + " tokens exceeds its cache of " + c.capacity
                    + " positions (n_positions " + config.nPositions() + ")");
    }

    /**
     * Runs tokens[from, to) through the model after what {@code cache} holds, appending their keys and
     * values; when {@code logits} is not null it receives the next-token logits after the last one [V].
     */
    public synchronized void prefill(KvCache cache, int[] tokens, int from, int to, float[] logits) {
        if (to <= from) throw new WaferException("prefill needs at least one token");
        checkRoom(cache, to - from);
        for (int i = from; i < to; i++) checkToken(tokens[i]);
        if (px == null) {
            px = new float[CHUNK * C]; pxn = new float[CHUNK * C]; pqkv = new float[CHUNK * 3 * C];
            patt = new float[CHUNK * C]; phid = new float[CHUNK * F]; pmean = new float[CHUNK]; prstd = new float[CHUNK];
        }
        for (int s = from; s < to; s += CHUNK) {
            int T = Math.min(CHUNK, to - s), p0 = cache.length;
            for (int t = 0; t < T; t++) embed(tokens[s + t], p0 + t, px, t * C);
            for (int l = 0; l < layers.length; l++) {
                Layer w = layers[l];
                LayerNorm.forward(pxn, pmean, prstd, px, w.ln1W, w.ln1B, T, C, eps);
                Linear.forward(pqkv, pxn, w.qkv, w.qkvB, T, C, 3 * C);
                for (int t = 0; t < T; t++) store(cache, l, p0 + t, pqkv, t * 3 * C);
                final int layer = l, TT = T, P = p0 + T;
                Parallel.forRange(H, (wk, a, b) -> {
                    if (pscores[wk] == null || pscores[wk].length < TT * P) pscores[wk] = new float[TT * P];
                    for (int h = a; h < b; h++) {
                        Attention.forwardCached(patt, h * hs, C, pqkv, h * hs, 3 * C, cache.k[layer], cache.v[layer],
                                h * cache.capacity * hs, hs, p0, TT, scale, pscores[wk]);
                    }
                });
                Linear.forward(pxn, patt, w.proj, w.projB, T, C, C);
                addInPlace(px, pxn, T * C);
                LayerNorm.forward(pxn, pmean, prstd, px, w.ln2W, w.ln2B, T, C, eps);
                Linear.forward(phid, pxn, w.fc, w.fcB, T, C, F);
                Gelu.forward(act, phid, phid, T * F);
                Linear.forward(pxn, phid, w.mlp, w.mlpB, T, F, C);
                addInPlace(px, pxn, T * C);
            }
            cache.length += T;
            if (s + T == to && logits != null) {
                LayerNorm.forward(pxn, pmean, prstd, px, lnfW, lnfB, T, C, eps); // only the last row is used
                System.arraycopy(pxn, (T - 1) * C, pxn, 0, C);
                Kernels.current().decode(head, true, 1, V, C, pxn, null, logits);
            }
        }
    }

    /**
     * One decoding step for n sequences together: tokens[i] goes to position caches[i].length() of its
     * sequence, and logits[i*V, (i+1)*V) receives what follows it.
     */
    public synchronized void decode(KvCache[] caches, int[] tokens, int n, float[] logits) {
        if (n <= 0) return;
        if (n > capN) {
            capN = Math.max(n, 2 * capN);
            x = new float[capN * C]; xn = new float[capN * C]; qkv = new float[capN * 3 * C];
            att = new float[capN * C]; hid = new float[capN * F]; mean = new float[capN]; rstd = new float[capN];
        }
        for (int i = 0; i < n; i++) {
            checkToken(tokens[i]);
            checkRoom(caches[i], 1);
            embed(tokens[i], caches[i].length, x, i * C);
        }
        for (int l = 0; l < layers.length; l++) {
            Layer w = layers[l];
            LayerNorm.forward(xn, mean, rstd, x, w.ln1W, w.ln1B, n, C, eps);
            Linear.decode(qkv, xn, w.qkv, w.qkvB, n, C, 3 * C);
            for (int i = 0; i < n; i++) store(caches[i], l, caches[i].length, qkv, i * 3 * C);
            final int layer = l;
            Parallel.forRange(n * H, (wk, a, b) -> {
                for (int ih = a; ih < b; ih++) {
                    int i = ih / H, h = ih % H;
                    KvCache c = caches[i];
                    Attention.decodeCached(att, i * C + h * hs, qkv, i * 3 * C + h * hs, c.k[layer], c.v[layer],
                            h * c.capacity * hs, hs, c.length + 1, scale, scores[wk]);
                }
            });
            Linear.decode(xn, att, w.proj, w.projB, n, C, C);
            addInPlace(x, xn, n * C);
            LayerNorm.forward(xn, mean, rstd, x, w.ln2W, w.ln2B, n, C, eps);
            Linear.decode(hid, xn, w.fc, w.fcB, n, C, F);
            Gelu.forward(act, hid, hid, n * F);
            Linear.decode(xn, hid, w.mlp, w.mlpB, n, F, C);
            addInPlace(x, xn, n * C);
        }
        LayerNorm.forward(xn, mean, rstd, x, lnfW, lnfB, n, C, eps);
        Kernels.current().decode(head, true, n, V, C, xn, null, logits);
        for (int i = 0; i < n; i++) caches[i].length++;
    }

    private void embed(int tok, int pos, float[] out, int off) {
        if (pos >= config.nPositions())
            throw new WaferException("position " + pos + " is beyond the model's n_positions " + config.nPositions());
        embed.read((long) tok * C, out, off, C);
        int p = pos * C;
        for (int c = 0; c < C; c++) out[off + c] += wpe[p + c];
    }

    /** Copies the key and value of one position (from a qkv row) into the cache, head by head. */
    private void store(KvCache c, int layer, int pos, float[] qkvRow, int off) {
        float[] K = c.k[layer], Vv = c.v[layer];
        for (int h = 0; h < H; h++) {
            int dst = (h * c.capacity + pos) * hs;
            System.arraycopy(qkvRow, off + C + h * hs, K, dst, hs);
            System.arraycopy(qkvRow, off + 2 * C + h * hs, Vv, dst, hs);
        }
    }

    private static void addInPlace(float[] acc, float[] d, int n) {
        int i = 0, upper = FS.loopBound(n);
        for (; i < upper; i += FS.length())
            FloatVector.fromArray(FS, acc, i).add(FloatVector.fromArray(FS, d, i)).intoArray(acc, i);
        for (; i < n; i++) acc[i] += d[i];
    }
}
