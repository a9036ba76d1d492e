package ai.wafer.serve;

import ai.wafer.WaferException;
import ai.wafer.eval.EntitySpans;
import ai.wafer.eval.Tagging;
import ai.wafer.model.Task;
import ai.wafer.model.TokenClassifier;
import ai.wafer.generate.InferenceModel;
import ai.wafer.peft.FineTuned;
import ai.wafer.peft.MixedAdapters;
import ai.wafer.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A fine-tuned classification model (sequence or token classification) answering {@code /v1/classify} and
 * {@code /v1/tag}. Texts are encoded as fine-tuning encoded them: a sequence as its ordinary tokens; a text to
 * tag is split into words ({@link #words}), each encoded with a leading space ({@code TaskEncoder}), and a word's
 * tag is read at its last sub-token, where a causal model has seen the whole word (as {@code TaskData} trains it).
 * So tagging is word-level: {@code tokens} are the words.
 */
public final class Classifier {
    /**
     * One classified text: the most likely label and every label's probability (softmax); for a multi-label model the
     * labels whose probability (a sigmoid each) passes 0.5, for a regression model its number (the others null).
     */
    public record Classified(String label, List<String> labels, Double score, Map<String, Double> probabilities) {
        public Classified(String label, Map<String, Double> probabilities) { this(label, null, null, probabilities); }

        /** Its fields in a /v1/classify answer: label, labels or score, and the probabilities. */
        void write(com.fasterxml.jackson.databind.node.ObjectNode d) {
            if (score != null) { d.put("score", score); return; }
            if (labels != null) labels.forEach(d.putArray("labels")::add);
            else d.put("label", label);
            probabilities.forEach(d.putObject("probabilities")::put);
        }
    }

    /** One tagged text: its words, a tag per word, and (when the labels are IOB-style) the entity spans. */
    public record Tagged(List<String> tokens, List<String> tags, List<EntitySpans.Entity> entities) {}

    public final FineTuned ft;
    public final Tokenizer tokenizer;
    public final String name;
    /** Whether the labels are an entity tagging ({@link Tagging#isEntityTagging}), so that entity spans mean something (a POS tagger's do not). */
    private final boolean iob;

    /** The shared base this classifier's adapter runs on, or null when it has a model of its own ({@link #load}). */
    private final InferenceModel base;
    private final MixedAdapters.Adapter adapter;

    private Classifier(String name, FineTuned ft, Tokenizer tok, InferenceModel base, MixedAdapters.Adapter adapter) {
        this.name = name;
        this.ft = ft;
        this.tokenizer = tok;
        this.iob = Tagging.isEntityTagging(ft.labels);
        this.base = base;
        this.adapter = adapter;
    }

    /** A classification adapter on a base shared with other adapters ({@link InferenceModel#mixing}). */
    static Classifier shared(String name, MixedAdapters.Adapter adapter, Tokenizer tok, InferenceModel base) {
        return new Classifier(name, adapter.ft, tok, base, adapter);
    }

    /** {@code use} of the last hidden state of one text, under the lock of the model it runs on (its buffers are shared). */
    private <R> R hidden(int[] ids, Function<float[], R> use) {
        if (base != null) return base.hidden(ids, adapter, use);
        synchronized (this) {
            return use.apply(ft.gpt.forwardHidden(ids, 1, ids.length));
        }
    }

    /** True when {@code model} (or, with {@code adapter}, the adapter) is a sequence- or token-classification fine-tune. */
    public static boolean isClassifier(Path model, Path adapter) {
        Task t = FineTuned.savedTask(model, adapter);
        return t != null && t.classifies();
    }

    /** Loads the model (and adapter) and its tokenizer: {@code tokenizerDir}, else the model's own. */
    public static Classifier load(Path model, Path adapter, Path tokenizerDir) {
        FineTuned ft = FineTuned.load(model, adapter, null); // an adapter's hooks stay attached, dropout off
        if (!ft.task.classifies()) throw new WaferException(model + " is not a classification model");
        Path td = tokenizerDir != null ? tokenizerDir : model;
        if (!Files.isRegularFile(td.resolve("vocab.json")) && !Files.isRegularFile(td.resolve("tokenizer.json")))
            throw new WaferException(td + ": no tokenizer (vocab.json + merges.txt); a classifier reads text, pass --tokenizer DIR");
        Tokenizer tok = Tokenizer.load(td);
        Path n = adapter != null ? adapter : model;
        return new Classifier(n.getFileName() == null ? n.toString() : n.getFileName().toString(), ft, tok, null, null);
    }

    public Task task() { return ft.task; }

    /** Tokens a text may have: the context less any prefix-tuning positions. */
    public int maxTokens() { return ft.gpt.config.nPositions() - ft.gpt.positionOffset(); }

    /**
     * The second texts of {@code {"text_pair": "t" | ["t1", ...]}}, one per input, for a model fine-tuned on sentence
     * pairs (null for one that was not, which refuses them).
     */
    public List<String> pairs(com.fasterxml.jackson.databind.JsonNode n, int inputs) {
        String field = ft.columns.pair();
        if (field == null) {
            if (n != null) throw ApiException.bad("this model classifies single texts (it was not fine-tuned on pairs): drop text_pair", "text_pair");
            return null;
        }
        List<String> out = new ArrayList<>();
        if (n != null && n.isTextual()) out.add(n.asText());
        else if (n != null && n.isArray()) for (com.fasterxml.jackson.databind.JsonNode x : n) {
            if (!x.isTextual()) throw ApiException.bad("text_pair must be a string or an array of strings", "text_pair");
            out.add(x.asText());
        }
        if (out.size() != inputs)
            throw ApiException.bad("this model classifies sentence pairs (fine-tuned with \"" + field + "\" as the second text): give text_pair,"
                    + " one per input (" + inputs + ")", "text_pair");
        return out;
    }

    /** Classifies one text, or a pair ({@code pair} null for none), encoded as fine-tuning encoded it. */
    public Classified classify(String text, String pair) {
        int[] ids = ai.wafer.data.TaskEncoder.text(tokenizer, text, pair);
        check(ids.length);
        int T = ids.length, K = ft.labels.size();
        float[] logits = hidden(ids, h -> Arrays.copyOf(ft.seqHead().logits(h, new int[] {T}, null, 1, T), K));
        switch (ft.problem()) {
            case REGRESSION -> { return new Classified(null, null, (double) logits[0], null); }
            case MULTI_LABEL -> {
                List<String> on = new ArrayList<>();
                Map<String, Double> probs = new LinkedHashMap<>();
                for (int k = 0; k < K; k++) {
                    probs.put(ft.labels.get(k), 1 / (1 + Math.exp(-logits[k])));
                    if (logits[k] > 0) on.add(ft.labels.get(k)); // sigmoid > 0.5, as evaluation decides
                }
                return new Classified(null, on, null, probs);
            }
            case SINGLE_LABEL -> { }
        }
        double[] p = softmax(logits, 0, K);
        int best = 0;
        Map<String, Double> probs = new LinkedHashMap<>();
        for (int k = 0; k < K; k++) {
            probs.put(ft.labels.get(k), p[k]);
            if (p[k] > p[best]) best = k;
        }
        return new Classified(ft.labels.get(best), probs);
    }

    /**
     * A word, as CoNLL and the Brown corpus cut them: letters and digits with inner apostrophes, hyphens and periods
     * ("France's", "well-known", "3.5"), commas between digits ("1,000"), or letters each followed by a period
     * ("U.S.", "e.g."); anything else that is not a space is a word of one character, so each punctuation mark stands
     * alone. Not handled: a single-letter or longer abbreviation such as "Mr." loses its period to the next word.
     */
    private static final Pattern WORD = Pattern.compile(
            "(?:\\p{L}\\.){2,}(?![\\p{L}\\p{N}])|[\\p{L}\\p{N}\\p{M}]+(?:(?:['\u2019\\-.]|(?<=\\p{N}),(?=\\p{N}))[\\p{L}\\p{N}\\p{M}]+)*|\\S");

    /** The words of a text to tag (see {@link #WORD}): "Paris, France's capital." is Paris , France's capital . */
    public static List<String> words(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = WORD.matcher(text);
        while (m.find()) out.add(m.group());
        return out;
    }

    /** Tags words already split (a CoNLL sentence, say), each encoded with a leading space as in fine-tuning. */
    public Tagged tag(List<String> words) {
        List<Integer> ids = new ArrayList<>();
        int[] last = new int[words.size()];
        for (int w = 0; w < words.size(); w++) {
            for (int id : tokenizer.encodeOrdinary(" " + words.get(w))) ids.add(id);
            last[w] = ids.size() - 1;
        }
        check(ids.size());
        int T = ids.size(), K = ft.labels.size();
        int[] best = new int[T];
        hidden(ids.stream().mapToInt(Integer::intValue).toArray(), h -> { TokenClassifier.argmax(ft.tokenHead().logits(h, T), T, K, best); return best; });
        List<String> tags = new ArrayList<>(words.size());
        for (int pos : last) tags.add(ft.labels.get(best[pos]));
        return new Tagged(List.copyOf(words), tags, iob ? EntitySpans.lenient(tags, 0) : null);
    }

    private void check(int n) {
        if (n == 0) throw ApiException.bad("the input text is empty", "input");
        if (n > maxTokens())
            throw new ApiException(400, "the input has " + n + " tokens, more than this model's context of " + maxTokens(),
                    "input", "context_length_exceeded");
    }

    private static double[] softmax(float[] x, int off, int K) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int k = 0; k < K; k++) max = Math.max(max, x[off + k]);
        double[] p = new double[K];
        for (int k = 0; k < K; k++) sum += p[k] = Math.exp(x[off + k] - max);
        for (int k = 0; k < K; k++) p[k] /= sum;
        return p;
    }
}
