package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.data.JsonLines;
import ai.wafer.data.TextClassificationReader.LabeledText;
import ai.wafer.model.Gpt;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.LongConsumer;

/**
 * In-context classification (the GPT-3 paper's few-shot learning, no fine-tuning): each label's verbaliser is scored
 * by its log-likelihood under the base model after a prompt of K solved demonstrations and the target, and the best
 * label is the prediction. Demonstrations are drawn as {@code eval-choice --num-fewshot} draws them
 * ({@link ChoiceScorer#draw}), the target never among them, and the scoring is {@link ChoiceScorer#logLikelihoods}.
 */
public final class PromptClassifier {
    private PromptClassifier() {}

    /**
     * How an example is written: {@code instruction} once at the start, then each demonstration as {@code example}
     * with its {@code {text}} replaced, followed by its label's verbaliser and {@code separator}, then the target as
     * {@code example}. {@code verbalisers} maps labels to the text scored for them (empty: " " + the label).
     */
    public record Template(String instruction, String example, String separator, Map<String, String> verbalisers) {
        public static final Template DEFAULT = new Template("", "Text: {text}\nLabel:", "\n\n", Map.of());
        private static final Set<String> FIELDS = Set.of("instruction", "example", "separator", "verbalisers");

        /** A JSON object with the record's fields ({@code example} required); every problem names the file and field. */
        public static Template read(Path file) {
            JsonNode n = JsonLines.parse(JsonLines.text(file), file.toString());
            if (!n.isObject()) throw new WaferException(file + ": a template is a JSON object with \"example\" (and optionally \"instruction\", \"separator\", \"verbalisers\")");
            for (var it = n.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (!FIELDS.contains(f)) throw new WaferException(file + ": unknown field \"" + f + "\" (a template has " + String.join(", ", new java.util.TreeSet<>(FIELDS)) + ")");
            }
            String example = text(n, "example", null, file);
            if (example == null) throw new WaferException(file + ": \"example\" is missing (the prompt of one example, with {text} where its text goes)");
            if (!example.contains("{text}")) throw new WaferException(file + ": \"example\" has no {text} (where each example's text goes): " + n.get("example"));
            Map<String, String> verbalisers = new LinkedHashMap<>();
            JsonNode v = n.path("verbalisers");
            if (!v.isMissingNode()) {
                if (!v.isObject() || v.isEmpty()) throw new WaferException(file + ": \"verbalisers\" must be an object of label -> text");
                Map<String, String> seen = new HashMap<>();
                for (var e : v.properties()) {
                    if (!e.getValue().isTextual() || e.getValue().asText().isEmpty())
                        throw new WaferException(file + ": verbaliser of label \"" + e.getKey() + "\" must be a non-empty string");
                    String other = seen.put(e.getValue().asText(), e.getKey());
                    if (other != null) throw new WaferException(file + ": labels \"" + other + "\" and \"" + e.getKey() + "\" have the same verbaliser " + e.getValue());
                    verbalisers.put(e.getKey(), e.getValue().asText());
                }
            }
            return new Template(text(n, "instruction", "", file), example, text(n, "separator", "\n\n", file), verbalisers);
        }

        private static String text(JsonNode n, String field, String absent, Path file) {
            JsonNode v = n.path(field);
            if (v.isMissingNode()) return absent;
            if (!v.isTextual()) throw new WaferException(file + ": \"" + field + "\" must be a string");
            return v.asText();
        }

        String verbaliser(String label) { return verbalisers.isEmpty() ? " " + label : verbalisers.get(label); }
    }

    /**
     * Per example: the gold and the predicted label, and the mean cross-entropy of the gold label under the softmax of
     * the labels' log-likelihoods; {@code cutDemos}/{@code cutLeft}: prompts whose demonstrations had to be shortened
     * to fit the context, and those that did not fit even with empty demonstration texts, so lost their first tokens.
     */
    public record Result(List<String> gold, List<String> pred, double loss, int cutDemos, int cutLeft) {}

    /**
     * Classifies {@code data} by prompting with {@code shots} demonstrations from {@code pool} (seeded draw, never the
     * target itself nor an example of the same text). The labels are the template's verbalisers' keys, else those of
     * the pool and the data in order of appearance. {@code progress} gets the examples done.
     */
    public static Result run(Gpt model, Tokenizer tok, List<LabeledText> data, List<LabeledText> pool, Template t,
                             int shots, long seed, LongConsumer progress) {
        if (shots < 0) throw new WaferException("--shots must be 0 or more, got " + shots);
        List<String> labels = t.verbalisers().isEmpty() ? labelsOf(pool, data) : List.copyOf(t.verbalisers().keySet());
        for (List<LabeledText> set : List.of(data, pool))
            for (LabeledText e : set)
                if (t.verbaliser(e.label()) == null) throw new WaferException(e.where() + ": label \"" + e.label() + "\" has no verbaliser in the template");
        int[][] answers = new int[labels.size()][];
        int longest = 0;
        for (int c = 0; c < answers.length; c++) longest = Math.max(longest, (answers[c] = tok.encode(t.verbaliser(labels.get(c)))).length);
        int room = model.config.nPositions() + 1 - longest; // context tokens that fit before the longest verbaliser
        SplittableRandom r = new SplittableRandom(seed);
        List<String> gold = new ArrayList<>(), pred = new ArrayList<>();
        double loss = 0;
        int cutDemos = 0, cutLeft = 0;
        for (LabeledText target : data) {
            List<LabeledText> demos = demonstrations(pool, target, shots, r);
            int[][] texts = new int[demos.size()][];
            int cap = 0;
            for (int i = 0; i < texts.length; i++) cap = Math.max(cap, (texts[i] = tok.encode(demos.get(i).text())).length);
            int[] ctx = tok.encode(prompt(t, demos, texts, cap, tok, target));
            if (ctx.length > room && !demos.isEmpty()) cutDemos++;
            // cap the demonstrations' texts (the longest lose most), lowering the cap by the excess shared among them, until the prompt fits or they are empty
            while (ctx.length > room && cap > 0) ctx = tok.encode(prompt(t, demos, texts, cap = Math.max(0, cap - Math.max(1, (ctx.length - room) / texts.length)), tok, target));
            if (ctx.length > room) cutLeft++; // logLikelihoods drops the prompt's first tokens: the demonstrations', then the target's
            double[] ll = ChoiceScorer.logLikelihoods(model, ctx, answers, target.where());
            int best = 0;
            double max = ll[0];
            for (int c = 1; c < ll.length; c++) if (ll[c] > max) max = ll[best = c];
            double sum = 0;
            for (double l : ll) sum += Math.exp(l - max);
            loss += Math.log(sum) - (ll[labels.indexOf(target.label())] - max);
            gold.add(target.label());
            pred.add(labels.get(best));
            progress.accept(gold.size());
        }
        return new Result(gold, pred, loss / data.size(), cutDemos, cutLeft);
    }

    /** The next target's demonstrations from {@code r}'s stream: never the target itself, nor an example of the same text. */
    static List<LabeledText> demonstrations(List<LabeledText> pool, LabeledText target, int shots, SplittableRandom r) {
        return shots == 0 ? List.of() : ChoiceScorer.draw(pool, e -> e.equals(target) || e.text().equals(target.text()), shots, r);
    }

    /** The prompt text: instruction, demonstrations (texts cut to their first {@code cap} tokens) with their verbalisers, target. */
    static String prompt(Template t, List<LabeledText> demos, int[][] texts, int cap, Tokenizer tok, LabeledText target) {
        StringBuilder s = new StringBuilder(t.instruction());
        for (int i = 0; i < demos.size(); i++) {
            String text = texts[i].length <= cap ? demos.get(i).text() : tok.decode(Arrays.copyOf(texts[i], cap));
            s.append(t.example().replace("{text}", text)).append(t.verbaliser(demos.get(i).label())).append(t.separator());
        }
        return s.append(t.example().replace("{text}", target.text())).toString();
    }

    private static List<String> labelsOf(List<LabeledText> pool, List<LabeledText> data) {
        Set<String> s = new LinkedHashSet<>();
        pool.forEach(e -> s.add(e.label()));
        data.forEach(e -> s.add(e.label()));
        return List.copyOf(s);
    }
}
