package ai.wafer.serve;

import ai.wafer.WaferException;
import ai.wafer.eval.EntitySpans;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.model.Task;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.WeightType;
import ai.wafer.model.GptConfig;
import ai.wafer.peft.AdapterIo;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A fine-tuned classification model (sequence or token classification) answering {@code /v1/classify} and
 * {@code /v1/tag}. Texts are encoded as fine-tuning encoded them: a sequence as its ordinary tokens; a text to
 * tag is split into words ({@link #words}), each encoded with a leading space ({@code TaskEncoder}), and a word's
 * tag is read at its last sub-token, where a causal model has seen the whole word (as {@code TaskData} trains it).
 * So tagging is word-level: {@code tokens} are the words.
 */
public final class Classifier {
    /** One classified text: the most likely label and every label's probability. */
    public record Classified(String label, Map<String, Double> probabilities) {}

    /** One tagged text: its words, a tag per word, and (when the labels are IOB-style) the entity spans. */
    public record Tagged(List<String> tokens, List<String> tags, List<EntitySpans.Entity> entities) {}

    public final FinetuneModel fm;
    public final Tokenizer tokenizer;
    public final String name;
    /** Whether every label is O or B-/I-/E-/S-TYPE, so that entity spans mean something (a POS tagger's are not). */
    private final boolean iob;

    private Classifier(String name, FinetuneModel fm, Tokenizer tok) {
        this.name = name;
        this.fm = fm;
        this.tokenizer = tok;
        this.iob = fm.labels.stream().allMatch(l -> l.equals("O") || l.matches("[BIES](-.+)?"));
        fm.setTraining(false);
    }

    /** True when {@code model} (or, with {@code adapter}, the adapter) is a sequence- or token-classification fine-tune. */
    public static boolean isClassifier(Path model, Path adapter) {
        if (adapter != null) {
            if (!AdapterIo.isAdapter(adapter)) return false;
            AdapterIo.Info info = AdapterIo.info(adapter);
            return Task.parse(info.wafer().path("task").asText(info.taskType())).classifies();
        }
        if (!FinetuneModel.isModelDir(model)) return false;
        JsonNode arch = GptConfig.read(model.resolve("config.json")).extra().get("architectures");
        if (arch == null || !arch.isArray() || arch.isEmpty()) return false;
        String a = arch.get(0).asText();
        return a.equals(Task.SEQUENCE_CLASSIFICATION.hfArchitecture) || a.equals(Task.TOKEN_CLASSIFICATION.hfArchitecture);
    }

    /** Loads the model (and adapter) and its tokenizer: {@code tokenizerDir}, else the model's own. */
    public static Classifier load(Path model, Path adapter, Path tokenizerDir) {
        FinetuneModel fm = FinetuneModel.load(model, adapter, null);
        if (!fm.task.classifies()) throw new WaferException(model + " is not a classification model");
        Path td = tokenizerDir != null ? tokenizerDir : model;
        if (!Files.isRegularFile(td.resolve("vocab.json")) && !Files.isRegularFile(td.resolve("tokenizer.json")))
            throw new WaferException(td + ": no tokenizer (vocab.json + merges.txt); a classifier reads text, pass --tokenizer DIR");
        Tokenizer tok = Tokenizer.load(td);
        Path n = adapter != null ? adapter : model;
        return new Classifier(n.getFileName() == null ? n.toString() : n.getFileName().toString(), fm, tok);
    }

    /**
     * The transformer as a generation model, so the server has one; it is never asked to generate (completions on a
     * classifier are refused), and with an unmerged adapter it would lack the adapter's hooks.
     */
    public LoadedModel loaded(WeightType type) { return new LoadedModel(name, new InferenceModel(fm.gpt, type), tokenizer); }

    public Task task() { return fm.task; }

    /** Tokens a text may have: the context less any prefix-tuning positions. */
    public int maxTokens() { return fm.gpt.config.nPositions() - fm.gpt.positionOffset(); }

    /** Classifies one text; synchronized because the model's activation buffers are shared. */
    public synchronized Classified classify(String text) {
        int[] ids = tokenizer.encodeOrdinary(text);
        check(ids.length);
        int T = ids.length, K = fm.labels.size();
        float[] hidden = fm.gpt.forwardHidden(ids, 1, T);
        float[] logits = fm.seqHead.logits(hidden, new int[] {T}, 1, T);
        double[] p = softmax(logits, 0, K);
        int best = 0;
        Map<String, Double> probs = new LinkedHashMap<>();
        for (int k = 0; k < K; k++) {
            probs.put(fm.labels.get(k), p[k]);
            if (p[k] > p[best]) best = k;
        }
        return new Classified(fm.labels.get(best), probs);
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

    /** Tags one text word by word (see the class comment). */
    public Tagged tag(String text) { return tag(words(text)); }

    /** Tags words already split (a CoNLL sentence, say), each encoded with a leading space as in fine-tuning. */
    public synchronized Tagged tag(List<String> words) {
        List<Integer> ids = new ArrayList<>();
        int[] last = new int[words.size()];
        for (int w = 0; w < words.size(); w++) {
            for (int id : tokenizer.encodeOrdinary(" " + words.get(w))) ids.add(id);
            last[w] = ids.size() - 1;
        }
        check(ids.size());
        int T = ids.size(), K = fm.labels.size();
        float[] hidden = fm.gpt.forwardHidden(ids.stream().mapToInt(Integer::intValue).toArray(), 1, T);
        float[] logits = fm.tokenHead.logits(hidden, T);
        List<String> tags = new ArrayList<>(words.size());
        for (int pos : last) {
            int best = 0;
            for (int k = 1; k < K; k++) if (logits[pos * K + k] > logits[pos * K + best]) best = k;
            tags.add(fm.labels.get(best));
        }
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
