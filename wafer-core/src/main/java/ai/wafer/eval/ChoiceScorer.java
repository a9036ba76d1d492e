package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.data.JsonLines;
import ai.wafer.model.Gpt;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Zero-shot multiple choice as the Cerebras-GPT paper evaluates (HellaSwag, PIQA, ARC style):
 * each choice is scored by the log-likelihood of its tokens after the context; the prediction is
 * the best sum ("acc") or the best sum per byte of the choice ("acc_norm", as lm-evaluation-harness
 * normalises), so long choices are not punished for their length.
 */
public final class ChoiceScorer {
    private ChoiceScorer() {}

    public record Item(String context, List<String> choices, int label, String where) {}

    public record Result(int items, int correct, int correctNorm) {
        public double accuracy() { return (double) correct / items; }
        public double accuracyNorm() { return (double) correctNorm / items; }
    }

    /** Reads {"context", "choices": [...], "label"} lines; every problem names its file and line. */
    public static List<Item> read(Path file) {
        List<Item> items = new ArrayList<>();
        List<String> lines = JsonLines.lines(file);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i), where = file + ":" + (i + 1);
            if (line.isBlank()) continue;
            JsonNode n = JsonLines.parse(line, where);
            if (!n.path("context").isTextual()) throw new WaferException(where + ": \"context\" must be a string");
            JsonNode ch = n.path("choices");
            if (!ch.isArray() || ch.size() < 2) throw new WaferException(where + ": \"choices\" must be a list of at least 2 strings");
            List<String> choices = new ArrayList<>();
            for (JsonNode c : ch) {
                if (!c.isTextual() || c.asText().isEmpty()) throw new WaferException(where + ": every choice must be a non-empty string");
                choices.add(c.asText());
            }
            JsonNode l = n.path("label");
            if (!l.isIntegralNumber()) throw new WaferException(where + ": \"label\" must be an integer index into choices");
            if (l.asInt() < 0 || l.asInt() >= choices.size())
                throw new WaferException(where + ": label " + l.asInt() + " is out of range for " + choices.size() + " choices");
            items.add(new Item(n.get("context").asText(), choices, l.asInt(), where));
        }
        if (items.isEmpty()) throw new WaferException(file + ": no items");
        return items;
    }

    /**
     * The items with k solved examples in front of each context, as lm-evaluation-harness builds a k-shot prompt:
     * examples drawn from {@code pool} with one random stream seeded by {@code seed} (drawn again for each item, in
     * order), each written as its context and its correct choice, joined and followed by the item's own context with
     * "\n\n"; an item is never its own example (when pool holds it). The choices themselves are unchanged.
     */
    public static List<Item> withFewShot(List<Item> items, List<Item> pool, int k, long seed) {
        if (k < 0) throw new WaferException("--num-fewshot must be 0 or more, got " + k);
        if (k == 0) return items;
        SplittableRandom r = new SplittableRandom(seed);
        List<Item> out = new ArrayList<>(items.size());
        for (Item it : items) {
            StringBuilder ctx = new StringBuilder();
            for (Item ex : draw(pool, it::equals, k, r)) ctx.append(ex.context()).append(ex.choices().get(ex.label())).append("\n\n");
            out.add(new Item(ctx + it.context(), it.choices(), it.label(), it.where()));
        }
        return out;
    }

    /**
     * The few-shot draw (one for each target, in order, from one stream {@code r}): k distinct examples of {@code pool},
     * none for which {@code isTarget} holds, picked as lm-evaluation-harness picks them.
     */
    public static <T> List<T> draw(List<T> pool, java.util.function.Predicate<T> isTarget, int k, SplittableRandom r) {
        List<T> candidates = new ArrayList<>(pool);
        candidates.removeIf(isTarget);
        if (candidates.size() < k) throw new WaferException(k + "-shot needs " + k + " examples besides each item; the few-shot pool has " + candidates.size());
        List<T> out = new ArrayList<>(k);
        for (int i = 0; i < k; i++) out.add(candidates.remove(r.nextInt(candidates.size())));
        return out;
    }

    /** Scores every item; the choices of one item run as one batch, right-padded (causal: pads never reach real tokens). */
    public static Result score(Gpt model, Tokenizer tok, List<Item> items) { return score(model, tok, items, done -> { }); }

    /** As {@link #score(Gpt, Tokenizer, List)}, telling {@code progress} the items done after each. */
    public static Result score(Gpt model, Tokenizer tok, List<Item> items, java.util.function.LongConsumer progress) {
        int correct = 0, correctNorm = 0, done = 0;
        for (Item it : items) {
            if (done > 0) progress.accept(done);
            done++;
            int n = it.choices().size();
            int[][] answers = new int[n][];
            for (int c = 0; c < n; c++) answers[c] = tok.encode(it.choices().get(c));
            double[] ll = logLikelihoods(model, tok.encode(it.context()), answers, it.where());
            double best = -Double.MAX_VALUE, bestNorm = -Double.MAX_VALUE;
            int arg = -1, argNorm = -1;
            for (int c = 0; c < n; c++) {
                double norm = ll[c] / it.choices().get(c).getBytes(StandardCharsets.UTF_8).length;
                if (ll[c] > best) { best = ll[c]; arg = c; }
                if (norm > bestNorm) { bestNorm = norm; argNorm = c; }
            }
            if (arg == it.label()) correct++;
            if (argNorm == it.label()) correctNorm++;
        }
        return new Result(items.size(), correct, correctNorm);
    }

    /**
     * The log-likelihood of each continuation's tokens after the context's (the sum of their log-probabilities), the
     * continuations of one context run as one batch, right-padded (causal: pads never reach real tokens). A context too
     * long for the model loses tokens from its left, as lm-evaluation-harness cuts it; {@code where} names the item in errors.
     */
    public static double[] logLikelihoods(Gpt model, int[] ctx, int[][] answers, String where) {
        int P = model.config.nPositions(), n = answers.length, T = 0;
        int[][] rows = new int[n][];
        int[] start = new int[n];
        for (int c = 0; c < n; c++) {
            int[] ans = answers[c];
            if (ans.length >= P) throw new WaferException(where + ": choice " + c + " alone is longer than the model's " + P + " positions");
            int keep = Math.min(ctx.length, Math.max(1, P + 1 - ans.length)); // drop context from the left if too long
            int[] row = new int[keep + ans.length];
            System.arraycopy(ctx, ctx.length - keep, row, 0, keep);
            System.arraycopy(ans, 0, row, keep, ans.length);
            rows[c] = row;
            start[c] = keep;
            T = Math.max(T, row.length - 1);
        }
        int[] x = new int[n * T];
        for (int c = 0; c < n; c++) System.arraycopy(rows[c], 0, x, c * T, rows[c].length - 1);
        model.forward(x, null, n, T);
        float[] logits = model.activations().logits;
        int V = model.config.vocabSize();
        double[] ll = new double[n];
        for (int c = 0; c < n; c++) {
            for (int t = start[c]; t < rows[c].length; t++) ll[c] += logProb(logits, (c * T + t - 1) * V, V, rows[c][t]);
            if (Double.isNaN(ll[c])) // no score to compare (and no choice to count as right)
                throw new WaferException(where + ": the log-likelihood of choice " + c + " is NaN: the model's weights are not finite (a diverged run?)");
        }
        return ll;
    }

    static double logProb(float[] logits, int off, int V, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < V; v++) max = Math.max(max, logits[off + v]);
        double sum = 0;
        for (int v = 0; v < V; v++) sum += Math.exp(logits[off + v] - max);
        return logits[off + target] - max - Math.log(sum);
    }
}
