package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.model.Attention;
import ai.wafer.model.Gelu;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.LayerNorm;
import ai.wafer.tensor.Gemm;
import ai.wafer.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A GPT model prepared for generation: weights transposed to [out, in] (float32 or bfloat16), and a
 * forward pass that extends a {@link KvCache} instead of recomputing the sequence. A prompt goes
 * through {@link #prefill} in one batched pass (GEMMs over all its positions); then each new token
 * costs one {@link #decode} step, which can advance several sequences at once so the weights are
 * streamed from memory once for all of them.
 *
 * <p>The scratch buffers belong to the model, so one thread uses it at a time (methods are synchronized).
 */
public final class InferenceModel {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    /** Prompt positions per prefill pass: large enough for efficient GEMMs, small enough to bound scratch. */
    private static final int CHUNK = 512;

    private record Layer(float[] ln1W, float[] ln1B, Matrix qkv, float[] qkvB, Matrix proj, float[] projB,
                         float[] ln2W, float[] ln2B, Matrix fc, float[] fcB, Matrix mlp, float[] mlpB) {}

    public final GptConfig config;
    public final WeightType type;
    private final int C, H, hs, F, V;
    private final float eps, scale;
    private final GptConfig.Activation act;
    private final Matrix embed, head;
    private final float[] wpe, lnfW, lnfB;
    private final Layer[] layers;
    private final float[][] scores;
    /** Per-worker [T, P] score blocks of the prefill attention, grown on demand. */
    private final float[][] pscores = new float[Parallel.threads()][];

    // decode scratch for up to capN sequences
    private int capN;
    private float[] x, xn, qkv, att, hid, mean, rstd;
    // prefill scratch (CHUNK positions), allocated on first use
    private float[] px, pxn, pqkv, patt, phid, pmean, prstd, wscratch;

    public InferenceModel(Gpt m, WeightType type) {
        GptConfig c = m.config;
        this.config = c;
        this.type = type;
        C = c.nEmbd(); H = c.nHead(); hs = c.headSize(); F = c.nInner(); V = c.vocabSize();
        eps = c.layerNormEpsilon();
        scale = c.scaleAttnWeights() ? (float) (1.0 / Math.sqrt(hs)) : 1f;
        act = c.activation();
        embed = Matrix.ofRows(m.wte.array(), V, C, type);
        head = m.lmHead == m.wte ? embed : Matrix.ofRows(m.lmHead.array(), V, C, type);
        wpe = m.wpe.array();
        lnfW = m.lnfW.array();
        lnfB = m.lnfB.array();
        layers = new Layer[m.h.length];
        for (int l = 0; l < layers.length; l++) {
            Gpt.Block b = m.h[l];
            layers[l] = new Layer(b.ln1W().array(), b.ln1B().array(), Matrix.ofConv1D(b.attnW().array(), C, 3 * C, type), b.attnB().array(),
                    Matrix.ofConv1D(b.attnProjW().array(), C, C, type), b.attnProjB().array(), b.ln2W().array(), b.ln2B().array(),
                    Matrix.ofConv1D(b.fcW().array(), C, F, type), b.fcB().array(),
                    Matrix.ofConv1D(b.mlpProjW().array(), F, C, type), b.mlpProjB().array());
        }
        scores = new float[Parallel.threads()][c.nPositions()];
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
            if (type == WeightType.BF16) wscratch = new float[Math.max(3 * C * C, F * C)];
        }
        for (int s = from; s < to; s += CHUNK) {
            int T = Math.min(CHUNK, to - s), p0 = cache.length;
            for (int t = 0; t < T; t++) embed(tokens[s + t], p0 + t, px, t * C);
            for (int l = 0; l < layers.length; l++) {
                Layer w = layers[l];
                LayerNorm.forward(pxn, pmean, prstd, px, w.ln1W, w.ln1B, T, C, eps);
                w.qkv.gemm(pqkv, pxn, T, w.qkvB, wscratch);
                for (int t = 0; t < T; t++) store(cache, l, p0 + t, pqkv, t * 3 * C);
                final int layer = l, TT = T;
                Parallel.forRange(H, (wk, a, b) -> {
                    for (int h = a; h < b; h++) attendChunk(cache, layer, h, p0, TT, wk);
                });
                w.proj.gemm(pxn, patt, TT, w.projB, wscratch);
                addInPlace(px, pxn, T * C);
                LayerNorm.forward(pxn, pmean, prstd, px, w.ln2W, w.ln2B, T, C, eps);
                w.fc.gemm(phid, pxn, T, w.fcB, wscratch);
                Gelu.forward(act, phid, phid, T * F);
                w.mlp.gemm(pxn, phid, T, w.mlpB, wscratch);
                addInPlace(px, pxn, T * C);
            }
            cache.length += T;
            if (s + T == to && logits != null) {
                LayerNorm.forward(pxn, pmean, prstd, px, lnfW, lnfB, T, C, eps); // only the last row is used
                System.arraycopy(pxn, (T - 1) * C, pxn, 0, C);
                head.mul(logits, pxn, 1, null);
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
            w.qkv.mul(qkv, xn, n, w.qkvB);
            for (int i = 0; i < n; i++) store(caches[i], l, caches[i].length, qkv, i * 3 * C);
            final int layer = l;
            Parallel.forRange(n * H, (wk, a, b) -> {
                for (int ih = a; ih < b; ih++) {
                    int i = ih / H, h = ih % H;
                    attend(caches[i], layer, h, caches[i].length, qkv, i * 3 * C + h * hs, att, i * C + h * hs, scores[wk]);
                }
            });
            w.proj.mul(xn, att, n, w.projB);
            addInPlace(x, xn, n * C);
            LayerNorm.forward(xn, mean, rstd, x, w.ln2W, w.ln2B, n, C, eps);
            w.fc.mul(hid, xn, n, w.fcB);
            Gelu.forward(act, hid, hid, n * F);
            w.mlp.mul(xn, hid, n, w.mlpB);
            addInPlace(x, xn, n * C);
        }
        LayerNorm.forward(xn, mean, rstd, x, lnfW, lnfB, n, C, eps);
        head.mul(logits, xn, n, null);
        for (int i = 0; i < n; i++) caches[i].length++;
    }

    private void embed(int tok, int pos, float[] out, int off) {
        if (pos >= config.nPositions())
            throw new WaferException("position " + pos + " is beyond the model's n_positions " + config.nPositions());
        embed.row(tok, out, off);
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

    /**
     * Head h of the T prompt positions p0..p0+T-1 (queries in pqkv, keys and values already in the cache) attends
     * causally, as two GEMMs per head: S = Q K^T over all P = p0+T cached positions, a softmax of each row's first
     * p0+t+1 scores, and patt = S V. One query at a time would be T*P dot products of 64 floats, too short for
     * the vector units to pay off.
     */
    private void attendChunk(KvCache c, int layer, int h, int p0, int T, int worker) {
        int P = p0 + T, base = h * c.capacity * hs;
        if (pscores[worker] == null || pscores[worker].length < T * P) pscores[worker] = new float[T * P];
        float[] S = pscores[worker];
        Gemm.sgemmSerial(false, true, T, P, hs, scale, pqkv, h * hs, 3 * C, c.k[layer], base, hs, 0f, S, 0, P);
        for (int t = 0; t < T; t++) {
            int r = t * P, n = p0 + t + 1;
            Attention.softmax(S, r, n);
            java.util.Arrays.fill(S, r + n, r + P, 0f);
        }
        Gemm.sgemmSerial(false, false, T, hs, P, 1f, S, 0, P, c.v[layer], base, hs, 0f, patt, h * hs, C);
    }

    /** Head h of the query at position pos attends to cached positions 0..pos; writes hs outputs. */
    private void attend(KvCache c, int layer, int h, int pos, float[] q, int qo, float[] out, int oo, float[] sc) {
        float[] K = c.k[layer], Vv = c.v[layer];
        int base = h * c.capacity * hs;
        float max = Float.NEGATIVE_INFINITY;
        for (int t = 0; t <= pos; t++) {
            float s = scale * dot(q, qo, K, base + t * hs, hs);
            sc[t] = s;
            if (s > max) max = s;
        }
        float sum = 0;
        for (int t = 0; t <= pos; t++) { float e = (float) Math.exp(sc[t] - max); sc[t] = e; sum += e; }
        float inv = 1f / sum;
        java.util.Arrays.fill(out, oo, oo + hs, 0f);
        for (int t = 0; t <= pos; t++) axpy(sc[t] * inv, Vv, base + t * hs, out, oo, hs);
    }

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(FS);
        int i = 0, upper = FS.loopBound(n);
        for (; i < upper; i += FS.length())
            acc = FloatVector.fromArray(FS, a, ao + i).fma(FloatVector.fromArray(FS, b, bo + i), acc);
        float s = ai.wafer.tensor.VecMath.sum(acc);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0, upper = FS.loopBound(n);
        FloatVector a = FloatVector.broadcast(FS, alpha);
        for (; i < upper; i += FS.length())
            FloatVector.fromArray(FS, x, xo + i).fma(a, FloatVector.fromArray(FS, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    private static void addInPlace(float[] acc, float[] d, int n) {
        int i = 0, upper = FS.loopBound(n);
        for (; i < upper; i += FS.length())
            FloatVector.fromArray(FS, acc, i).add(FloatVector.fromArray(FS, d, i)).intoArray(acc, i);
        for (; i < n; i++) acc[i] += d[i];
    }
}
