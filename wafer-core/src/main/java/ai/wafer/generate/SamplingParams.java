package ai.wafer.generate;

import ai.wafer.WaferException;

import java.util.List;

/**
 * How to choose each next token and when to stop.
 *
 * @param maxNewTokens      at most this many tokens are generated
 * @param temperature       0 means greedy (argmax); otherwise logits are divided by it before sampling
 * @param topK              keep only the k most likely tokens (0: off)
 * @param topP              keep the smallest set of most likely tokens whose probability reaches p (1: off)
 * @param minP              drop tokens less likely than minP times the most likely one (0: off)
 * @param repetitionPenalty CTRL's rule for every token already in the sequence: positive logits are
 *                          divided by it, negative ones multiplied (1: off)
 * @param stop              stop strings: generation ends before the first occurrence of any, which is not returned
 * @param stopTokens        token ids that end generation (not returned), e.g. the end-of-text token
 * @param seed              seed of the sampling random stream; null draws one
 * @param numBeams          beam search width (1: no beam search; beams ignore the sampling options)
 */
public record SamplingParams(int maxNewTokens, float temperature, int topK, float topP, float minP,
                             float repetitionPenalty, List<String> stop, List<Integer> stopTokens, Long seed,
                             int numBeams) {
    public SamplingParams {
        stop = List.copyOf(stop);
        stopTokens = List.copyOf(stopTokens);
        check(maxNewTokens >= 0, "max_tokens", "must not be negative, got " + maxNewTokens);
        // below 0.01 (vLLM's floor too) 1/T overflows for subnormal T and the probabilities become NaN; above 2 is noise
        check(temperature == 0 || temperature >= 0.01f && temperature <= 2, "temperature", "must be 0 (greedy) or in [0.01, 2], got " + temperature);
        check(topK >= 0, "top_k", "must not be negative, got " + topK);
        check(topP > 0 && topP <= 1, "top_p", "must be in (0, 1], got " + topP);
        check(minP >= 0 && minP <= 1, "min_p", "must be in [0, 1], got " + minP);
        // a tiny penalty multiplies logits to infinity: 0.01 and 100 already change them a hundredfold
        check(repetitionPenalty >= 0.01f && repetitionPenalty <= 100, "repetition_penalty", "must be in [0.01, 100], got " + repetitionPenalty);
        check(numBeams >= 1, "num_beams", "must be at least 1, got " + numBeams);
        for (String s : stop) check(!s.isEmpty(), "stop", "strings must not be empty");
    }

    /** A parameter out of its range: {@code field} is its name (the OpenAI API's, as the server answers it). */
    public static final class Invalid extends WaferException {
        public final String field;

        Invalid(String field, String message) {
            super(field + " " + message);
            this.field = field;
        }
    }

    private static void check(boolean ok, String field, String msg) { if (!ok) throw new Invalid(field, msg); }

    /** Greedy decoding of up to n tokens, no stops. */
    public static SamplingParams greedy(int n) {
        return new SamplingParams(n, 0f, 0, 1f, 0f, 1f, List.of(), List.of(), null, 1);
    }

    public boolean isGreedy() { return temperature == 0f || topK == 1; }

    public SamplingParams withMaxNewTokens(int n) {
        return new SamplingParams(n, temperature, topK, topP, minP, repetitionPenalty, stop, stopTokens, seed, numBeams);
    }

    public SamplingParams withStopTokens(List<Integer> ids) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, stop, ids, seed, numBeams);
    }

    public SamplingParams withStop(List<String> s) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, s, stopTokens, seed, numBeams);
    }

    public SamplingParams withSeed(Long s) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, stop, stopTokens, s, numBeams);
    }
}
