package ai.wafer.generate;

import ai.wafer.model.KvCache;
import ai.wafer.WaferException;
import ai.wafer.peft.MixedAdapters;
import ai.wafer.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * One generation in progress: its tokens, KV cache, sampler and text stream. A driver (a
 * {@link Generator}, or the server's batch loop) prefills it once, then feeds it the logits of each
 * decode step through {@link #accept} until {@link #done}.
 */
public final class Sequence {
    /** Receives each generated token as it is made, with the text it completes (token -1: text only, at the end). */
    @FunctionalInterface
    public interface Listener { void onToken(int token, String text); }

    /** A token's log-probability under the model (before sampling's temperature and penalties) and the top alternatives'. */
    public record Logprob(int token, double logprob, int[] topTokens, double[] topLogprobs) {}

    private int topLogprobs = -1; // -1: none asked
    private float[] raw = new float[0];
    private Logprob lastLogprob;

    /** Computes each new token's {@link Logprob} with the {@code top} most likely alternatives (0..20); call before prefill. */
    public void wantLogprobs(int top) { topLogprobs = top; }

    /** The {@link Logprob} of the token last passed to the listener (null unless {@link #wantLogprobs}). */
    public Logprob lastLogprob() { return lastLogprob; }

    public final SamplingParams params;
    public final int promptLength;
    final KvCache cache;
    private final InferenceModel model;
    private final Sampler sampler;
    private final int[] tokens;
    private int length;
    private final TextStream stream;
    private final int[] stopIds;
    private final Listener listener;
    private FinishReason finish;

    /** The adapter this sequence's prompt runs with on a mixing base (null: the base alone); its decode steps pass it too. */
    private final MixedAdapters.Adapter adapter;

    /** @param tok may be null: then there is no text and stop strings are not allowed */
    public Sequence(InferenceModel model, Tokenizer tok, int[] prompt, SamplingParams p, Listener listener) { this(model, tok, prompt, p, null, listener); }

    public Sequence(InferenceModel model, Tokenizer tok, int[] prompt, SamplingParams p, MixedAdapters.Adapter adapter, Listener listener) {
        this.adapter = adapter;
        int capacity = capacity(model, prompt, p);
        if (tok == null && !p.stop().isEmpty()) throw new WaferException("stop strings need a tokenizer");
        this.model = model;
        this.params = p;
        this.promptLength = prompt.length;
        this.listener = listener;
        cache = model.newCache(capacity);
        tokens = Arrays.copyOf(prompt, capacity);
        length = prompt.length;
        sampler = new Sampler(p, model.vocabSize());
        stream = tok == null ? null : new TextStream(tok, p.stop());
        stopIds = p.stopTokens().stream().mapToInt(Integer::intValue).sorted().toArray();
        if (length >= capacity) finish = FinishReason.LENGTH;
    }

    /** Positions for the prompt and p's new tokens, within the model's context; the prompt must be there and fit. */
    static int capacity(InferenceModel model, int[] prompt, SamplingParams p) {
        int nPos = model.contextLength();
        if (prompt.length == 0) throw new WaferException("the prompt is empty (it needs at least one token)");
        if (prompt.length > nPos)
            throw new WaferException("the prompt has " + prompt.length + " tokens, more than the model's context of " + nPos);
        return (int) Math.min(nPos, (long) prompt.length + p.maxNewTokens());
    }

    /** Runs the prompt through the model and picks the first token; logits is scratch of V floats. */
    public void prefill(float[] logits) {
        if (finish != null) return;
        model.prefill(cache, tokens, 0, promptLength, logits, adapter);
        accept(logits, 0);
    }

    /** Picks the next token from logits[off, off+V) (those after {@link #last}); returns true when done. */
    public boolean accept(float[] logits, int off) {
        if (finish != null) throw new IllegalStateException("the sequence is finished");
        int V = model.vocabSize();
        if (topLogprobs >= 0) { // the model's distribution, before the sampler adjusts the row in place
            if (raw.length < V) raw = new float[V];
            System.arraycopy(logits, off, raw, 0, V);
        }
        int t = sampler.next(logits, off, tokens, length);
        if (topLogprobs >= 0) lastLogprob = logprob(raw, V, t, topLogprobs);
        String delta = "";
        if (Arrays.binarySearch(stopIds, t) >= 0) {
            finish = FinishReason.STOP;
        } else {
            tokens[length++] = t;
            if (stream != null) delta = stream.add(t);
            if (stream != null && stream.stopped()) finish = FinishReason.STOP;
            else if (length >= tokens.length) finish = FinishReason.LENGTH;
            if (finish != null && stream != null) delta += stream.finish();
            if (listener != null) listener.onToken(t, delta);
            return finish != null;
        }
        if (stream != null) delta = stream.finish();
        if (listener != null && !delta.isEmpty()) listener.onToken(-1, delta);
        return true;
    }

    /** log softmax(row)[t], and the top k entries' (largest first, lower id on ties). */
    static Logprob logprob(float[] row, int V, int t, int k) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < V; i++) max = Math.max(max, row[i]);
        double sum = 0;
        for (int i = 0; i < V; i++) sum += Math.exp(row[i] - max);
        double lse = max + Math.log(sum);
        int[] top = new int[k];
        double[] lp = new double[k];
        java.util.Arrays.fill(top, -1);
        for (int i = 0; i < V; i++) { // insertion into the k best so far
            int j = k - 1;
            if (j < 0 || top[j] >= 0 && row[i] <= row[top[j]]) continue;
            while (j > 0 && (top[j - 1] < 0 || row[i] > row[top[j - 1]])) { top[j] = top[j - 1]; j--; }
            top[j] = i;
        }
        for (int j = 0; j < k; j++) lp[j] = row[top[j]] - lse;
        return new Logprob(t, row[t] - lse, top, lp);
    }

    public boolean done() { return finish != null; }

    public FinishReason finishReason() { return finish; }

    /** The last token, which the next decode step consumes. */
    public int last() { return tokens[length - 1]; }

    public KvCache cache() { return cache; }

    public int[] generated() { return Arrays.copyOfRange(tokens, promptLength, length); }

    /** The generated text (empty without a tokenizer). */
    public String text() { return stream == null ? "" : stream.text(); }
}
