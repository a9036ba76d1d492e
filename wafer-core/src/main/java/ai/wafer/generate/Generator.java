package ai.wafer.generate;

import ai.wafer.model.KvCache;
import ai.wafer.WaferException;
import ai.wafer.tokenizer.Tokenizer;

/** Runs generations to the end on the calling thread: one sequence, or a beam search. */
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
}
