package ai.wafer.train;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;

/** Mean next-token loss of a model over batches of a loader (perplexity = exp of it). */
public final class LmEval {
    private LmEval() {}

    public record Result(double loss, long tokens) {
        public double perplexity() { return Math.exp(loss); }
    }

    /** Evaluates {@code batches} batches, starting where the loader stands. */
    public static Result run(Gpt model, TokenLoader data, long batches) { return run(model, data, batches, done -> { }); }

    /** As {@link #run(Gpt, TokenLoader, long)}, telling {@code progress} the batches done after each. */
    public static Result run(Gpt model, TokenLoader data, long batches, java.util.function.LongConsumer progress) {
        int B = data.batchSize(), T = data.seqLen();
        int[] x = new int[B * T], y = new int[B * T];
        double sum = 0;
        long tokens = 0;
        for (long i = 0; i < batches; i++) {
            data.nextBatch(x, y);
            sum += (double) model.forward(x, y, B, T) * x.length;
            tokens += x.length;
            progress.accept(i + 1);
        }
        // a NaN loss is no score: report it rather than print it (JSON has no NaN)
        if (!Double.isFinite(sum)) throw new ai.wafer.WaferException("the loss over " + tokens + " tokens is " + sum / tokens
                + ": the model's weights are not finite (a diverged run?)");
        return new Result(sum / tokens, tokens);
    }

    /** Evaluates the same {@code batches} batches every time: the loader is rewound to its start first. */
    public static Result fixed(Gpt model, TokenLoader data, long batches) {
        rewind(data);
        return run(model, data, batches);
    }

    /** Puts the loader back at its first batch, so that every evaluation sees the same batches. */
    public static void rewind(TokenLoader data) {
        data.restore(new TokenLoader.State(0, data.totalTokens(), data.seqLen(), data.state().shuffled(), data.state().seed()));
    }
}
