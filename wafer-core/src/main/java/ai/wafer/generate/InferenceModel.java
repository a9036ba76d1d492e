package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.model.Activations;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.KvCache;
import ai.wafer.peft.FineTuned;
import ai.wafer.peft.Fingerprint;
import ai.wafer.peft.MixedAdapters;

import java.nio.file.Path;
import java.util.function.Function;

/**
 * A {@link Gpt} set up for generation: frozen, its matrices in the chosen {@link WeightType}, an optional prefix,
 * and the scratch of {@link Gpt#forwardCached}, which runs the model's own blocks with a {@link KvCache} instead of
 * recomputing the sequence. A prompt goes through {@link #prefill} in chunks (GEMMs over all their positions); then
 * each new token costs one {@link #decode} step, which can advance several sequences at once so the weights are
 * streamed from memory once for all of them.
 *
 * <p>{@link WeightType#BF16} converts the model's matrices (and the embedding that is the LM head) to bfloat16 in
 * place, once: their float32 values are replaced, not kept beside them; {@link WeightType#INT8} quantizes them to int8
 * with a scale per output channel (or per group of inputs), and uses an int8 file's as they are stored. {@link WeightType#F32} widens any other storage back to float32. The scratch belongs to this object, so one thread uses it at a time (synchronized).
 */
public final class InferenceModel {
    /** Prompt positions per prefill pass: large enough for efficient GEMMs, small enough to bound scratch. */
    private static final int CHUNK = 512;

    public final GptConfig config;
    public final WeightType type;
    private final Gpt gpt;
    private final int L, H, hs, C;
    private Activations prefillActs, decodeActs;
    private int decodeRows;
    private final int[] chunk = new int[CHUNK];
    private float[] prefix;
    private int prefixLength;

    /** The routers of several adapters over this base, or null (see {@link #mixing}). */
    private final MixedAdapters mixed;
    /** The base's fingerprint before the dtype conversion, which adapters are checked against (null unless mixing). */
    private final String baseFingerprint;
    /** Scratch: the one row of a prefill or a text's pass. */
    private final MixedAdapters.Adapter[] single = new MixedAdapters.Adapter[1];

    public InferenceModel(Gpt m, WeightType type) { this(m, type, null, null); }

    private InferenceModel(Gpt m, WeightType type, MixedAdapters mixed, String baseFingerprint) {
        this.config = m.config;
        this.type = type;
        this.gpt = m;
        this.mixed = mixed;
        this.baseFingerprint = baseFingerprint;
        L = config.nLayer(); H = config.nHead(); hs = config.headSize(); C = config.nEmbd();
        type.apply(m);
    }

    /**
     * A base that serves many adapters at once, unmerged ({@link MixedAdapters}): each forward pass takes each row's
     * adapter (null: the base alone). {@code m} must have no hooks.
     */
    public static InferenceModel mixing(Gpt m, WeightType type) {
        String fp = Fingerprint.of(m);
        return new InferenceModel(m, type, new MixedAdapters(m), fp);
    }

    /**
     * The adapter in {@code dir} (LoRA or (IA)3, of any task) for this mixing base, loaded from {@code baseDir};
     * refused when it was trained on another base.
     */
    public MixedAdapters.Adapter loadAdapter(Path baseDir, Path dir) {
        if (mixed == null) throw new IllegalStateException("not a mixing base");
        return MixedAdapters.adapter(FineTuned.onBase(gpt, baseFingerprint, baseDir, dir, null), dir.toString());
    }

    /** Selects row b's adapter for the next pass (rows null: the base for all; always so without mixing). */
    private void select(MixedAdapters.Adapter[] rows, int B) {
        if (mixed != null) mixed.select(rows, B);
        else if (rows != null) for (int b = 0; b < B; b++) if (rows[b] != null) throw new IllegalStateException("adapters need a mixing base");
    }

    private MixedAdapters.Adapter[] single(MixedAdapters.Adapter a) {
        single[0] = a;
        return single;
    }

    public int vocabSize() { return config.vocabSize(); }

    /**
     * Puts prefix-tuning's virtual tokens in front of every sequence: {@code prompt} is PEFT's
     * {@code prompt_embeddings} [P, L * 2 * C]. Each new cache starts with them as its first P positions, so every
     * token attends to them and the text's positions start at P, as with Hugging Face's past_key_values; the text's
     * room shrinks to n_positions - P.
     */
    public void setPrefix(float[] prompt, int P) {
        if (P < 0 || P >= config.nPositions() || prompt.length != P * L * 2 * C)
            throw new WaferException("a prefix of " + P + " virtual tokens needs [" + P + ", " + L * 2 * C
                    + "] values and fewer than n_positions " + config.nPositions() + " tokens");
        prefix = prompt.clone();
        prefixLength = P;
    }

    /** Tokens a sequence may hold: n_positions, less a prefix's virtual tokens. */
    public int contextLength() { return config.nPositions() - prefixLength; }

    /** A cache for a sequence of up to {@code capacity} tokens (at most {@link #contextLength}), holding the prefix if any. */
    public KvCache newCache(int capacity) {
        if (capacity <= 0 || capacity > contextLength())
            throw new WaferException("sequence length " + capacity + " must be in [1, " + contextLength() + "] (the model's n_positions"
                    + (prefixLength > 0 ? " less a prefix of " + prefixLength : "") + ")");
        KvCache c = new KvCache(L, H, hs, capacity + prefixLength);
        if (prefixLength > 0) c.fillPrefix(prefix, prefixLength);
        return c;
    }

    /** Bytes of weights one decode step reads: every matrix once (the head, not the embedding lookup), plus the small vectors. */
    public long weightBytesPerToken() {
        long n = gpt.lmHead.weights().bytes();
        for (Gpt.Block b : gpt.h)
            n += b.attnW().weights().bytes() + b.attnProjW().weights().bytes() + b.fcW().weights().bytes()
                    + b.mlpProjW().weights().bytes() + 4L * (3 * C + 6 * C + config.nInner());
        return n;
    }

    /**
     * Runs tokens[from, to) through the model after what {@code cache} holds, appending their keys and
     * values; when {@code logits} is not null it receives the next-token logits after the last one [V].
     */
    /**
     * An embedding of a text: the mean over its positions of the last hidden state (after ln_f), L2-normalised (mean
     * pooling, as sentence-transformers and SGPT pool a decoder's states). A prefix adapter's virtual tokens take no part.
     */
    public float[] embed(int[] tokens) { return embed(tokens, null); }

    /** {@link #embed(int[])} with {@code adapter}'s hooks (null: the base). */
    public synchronized float[] embed(int[] tokens, MixedAdapters.Adapter adapter) {
        int T = tokens.length;
        if (T < 1 || T > config.nPositions()) throw new WaferException("an input of " + T + " tokens: it must have 1 to n_positions " + config.nPositions());
        float[] h = hidden(tokens, adapter, x -> x), e = new float[C];
        for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) e[c] += h[t * C + c];
        double norm = 0;
        for (float v : e) norm += (double) v * v;
        float inv = norm == 0 ? 0f : (float) (1 / Math.sqrt(norm));
        for (int c = 0; c < C; c++) e[c] *= inv;
        return e;
    }

    /**
     * The last hidden state (after ln_f) [T, C] of one text run with {@code adapter} (null: the base), handed to
     * {@code use} while this model's lock is held (the buffer is the model's): a classification adapter's head reads it.
     */
    public synchronized <R> R hidden(int[] tokens, MixedAdapters.Adapter adapter, Function<float[], R> use) {
        select(single(adapter), 1);
        return use.apply(gpt.forwardHidden(tokens, 1, tokens.length));
    }

    public void prefill(KvCache cache, int[] tokens, int from, int to, float[] logits) { prefill(cache, tokens, from, to, logits, null); }

    /** {@link #prefill(KvCache, int[], int, int, float[])} with {@code adapter}'s update (null: the base). */
    public synchronized void prefill(KvCache cache, int[] tokens, int from, int to, float[] logits, MixedAdapters.Adapter adapter) {
        if (to <= from) throw new WaferException("prefill needs at least one token");
        select(single(adapter), 1);
        int chunkLen = Math.min(CHUNK, config.nPositions());
        if (prefillActs == null) prefillActs = gpt.newGenerationActs(1, chunkLen);
        KvCache[] one = {cache};
        for (int s = from; s < to; s += chunkLen) {
            int T = Math.min(chunkLen, to - s);
            System.arraycopy(tokens, s, chunk, 0, T);
            gpt.forwardCached(prefillActs, one, chunk, 1, T, s + T == to ? logits : null);
        }
    }

    /**
     * One decoding step for n sequences together: tokens[i] goes to position caches[i].length() of its
     * sequence, and logits[i*V, (i+1)*V) receives what follows it.
     */
    public void decode(KvCache[] caches, int[] tokens, int n, float[] logits) { decode(caches, tokens, n, logits, null); }

    /** {@link #decode(KvCache[], int[], int, float[])} with row i's own adapter {@code adapters[i]} (null, or adapters null: the base). */
    public synchronized void decode(KvCache[] caches, int[] tokens, int n, float[] logits, MixedAdapters.Adapter[] adapters) {
        if (n <= 0) return;
        select(adapters, n);
        if (n > decodeRows) decodeActs = gpt.newGenerationActs(decodeRows = Math.max(n, 2 * decodeRows), 1);
        gpt.forwardCached(decodeActs, caches, tokens, n, 1, logits);
    }
}
