package ai.wafer.generate;

import ai.wafer.model.KvCache;
import ai.wafer.WaferException;
import ai.wafer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/** Runs generations to the end on the calling thread: one sequence, a batch decoded together, or a beam search. */
public final class Generator {
    /** A finished generation: the new tokens (without a stop token), their text, and timings. */
    public record Result(int[] tokens, String text, FinishReason finishReason, int promptTokens,
                         long prefillNanos, long decodeNanos) {
        /** Tokens after the first per second of decoding (the first comes from the prefill). */
        public double decodeTokensPerSecond() {
            return tokens.length <= 1 || decodeNanos == 0 ? 0 : (tokens.length - 1) / (decodeNanos / 1e9);
        }
    }

    private final InferenceModel model;
    private final Tokenizer tok;

    /** @param tok may be null for token-level use (no text, no stop strings) */
    public Generator(InferenceModel model, Tokenizer tok) {
        this.model = model;
        this.tok = tok;
    }

    public InferenceModel model() { return model; }

    public Tokenizer tokenizer() { return tok; }

    public Result generate(String prompt, SamplingParams p, Sequence.Listener listener) {
        if (tok == null) throw new WaferException("text prompts need a tokenizer");
        return generate(tok.encode(prompt), p, listener);
    }

    /** Generates after prompt; listener (may be null) hears each token as it is made (beam search: all at the end). */
    public Result generate(int[] prompt, SamplingParams p, Sequence.Listener listener) {
        if (p.numBeams() > 1) {
            Result r = BeamSearch.run(model, tok, prompt, p);
            if (listener != null) {
                if (r.tokens().length > 0 || !r.text().isEmpty()) listener.onToken(r.tokens().length > 0 ? r.tokens()[r.tokens().length - 1] : -1, r.text());
            }
            return r;
        }
        Sequence s = new Sequence(model, tok, prompt, p, listener);
        float[] logits = new float[model.vocabSize()];
        long t0 = System.nanoTime();
        s.prefill(logits);
        long t1 = System.nanoTime();
        KvCache[] caches = {s.cache};
        int[] last = new int[1];
        while (!s.done()) {
            last[0] = s.last();
            model.decode(caches, last, 1, logits);
            s.accept(logits, 0);
        }
        long t2 = System.nanoTime();
        return new Result(s.generated(), s.text(), s.finishReason(), prompt.length, t1 - t0, t2 - t1);
    }

    /**
     * Generates after every prompt, decoding all unfinished sequences together in each step (the
     * weights are read once per step for all of them). Each sequence samples from its own stream.
     */
    public List<Result> generateBatch(List<int[]> prompts, SamplingParams p) {
        if (p.numBeams() > 1) throw new WaferException("beam search runs one prompt at a time");
        int n = prompts.size(), V = model.vocabSize();
        Sequence[] seqs = new Sequence[n];
        float[] logits = new float[n * V];
        long[] prefill = new long[n];
        for (int i = 0; i < n; i++) {
            // the same seed for each would give correlated samples: offset it by the row
            SamplingParams pi = p.seed() == null ? p : p.withSeed(p.seed() + i);
            seqs[i] = new Sequence(model, tok, prompts.get(i), pi, null);
            long t = System.nanoTime();
            seqs[i].prefill(logits);
            prefill[i] = System.nanoTime() - t;
        }
        long t0 = System.nanoTime();
        KvCache[] caches = new KvCache[n];
        int[] last = new int[n];
        Sequence[] active = new Sequence[n];
        while (true) {
            int m = 0;
            for (Sequence s : seqs) if (!s.done()) active[m++] = s;
            if (m == 0) break;
            for (int i = 0; i < m; i++) { caches[i] = active[i].cache; last[i] = active[i].last(); }
            model.decode(caches, last, m, logits);
            for (int i = 0; i < m; i++) active[i].accept(logits, i * V);
        }
        long dt = System.nanoTime() - t0;
        List<Result> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Sequence s = seqs[i];
            out.add(new Result(s.generated(), s.text(), s.finishReason(), s.promptLength, prefill[i], dt));
        }
        return out;
    }
}
