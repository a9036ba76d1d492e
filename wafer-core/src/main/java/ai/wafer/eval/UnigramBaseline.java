package ai.wafer.eval;

import ai.wafer.io.TokenShard;

import java.nio.file.Path;
import java.util.List;

/**
 * The loss a model would get by ignoring context: each token's training-set frequency
 * (add-one smoothed over the vocabulary). A language model worth its compute beats it by a wide margin.
 */
public final class UnigramBaseline {
    private final double[] logp;

    private UnigramBaseline(double[] logp) { this.logp = logp; }

    public static UnigramBaseline fit(List<Path> shards, int vocabSize) {
        long[] counts = new long[vocabSize];
        long total = 0;
        for (Path p : shards) {
            try (TokenShard s = TokenShard.open(p)) {
                for (long i = 0; i < s.size(); i++) { counts[s.get(i)]++; total++; }
            }
        }
        double[] logp = new double[vocabSize];
        double denom = total + vocabSize;
        for (int v = 0; v < vocabSize; v++) logp[v] = Math.log((counts[v] + 1) / denom);
        return new UnigramBaseline(logp);
    }

    /** Mean negative log-likelihood (nats per token) of the tokens in {@code shards}. */
    public double crossEntropy(List<Path> shards) {
        double sum = 0;
        long n = 0;
        for (Path p : shards) {
            try (TokenShard s = TokenShard.open(p)) {
                for (long i = 0; i < s.size(); i++) { sum -= logp[s.get(i)]; n++; }
            }
        }
        return sum / n;
    }
}
