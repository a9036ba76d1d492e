package ai.wafer.finetune;

import ai.wafer.data.ConllReader;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.eval.ClassificationReport;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The simple baselines a fine-tuned model has to beat, scored with the same report as the model:
 * most-frequent-tag-per-word for token classification (a word never seen in training gets the most
 * frequent tag overall), multinomial naive Bayes over lower-cased word counts (add-one smoothing) for
 * sequence classification.
 */
public final class Baselines {
    private Baselines() {}

    /** Gold and predicted labels per example, as {@link Evaluator.Scores} holds them. */
    public record Result(List<List<String>> gold, List<List<String>> pred, ClassificationReport report) {}

    public static Result mostFrequentTag(List<ConllReader.Sentence> train, List<ConllReader.Sentence> test) {
        Map<String, Map<String, Integer>> counts = new HashMap<>();
        Map<String, Integer> overall = new HashMap<>();
        for (ConllReader.Sentence s : train)
            for (int i = 0; i < s.words().size(); i++) {
                counts.computeIfAbsent(s.words().get(i), k -> new HashMap<>()).merge(s.tags().get(i), 1, Integer::sum);
                overall.merge(s.tags().get(i), 1, Integer::sum);
            }
        String fallback = argmax(overall);
        Map<String, String> best = new HashMap<>();
        counts.forEach((w, c) -> best.put(w, argmax(c)));
        List<List<String>> gold = new ArrayList<>(), pred = new ArrayList<>();
        for (ConllReader.Sentence s : test) {
            gold.add(s.tags());
            pred.add(s.words().stream().map(w -> best.getOrDefault(w, fallback)).toList());
        }
        return result(gold, pred);
    }

    private static final Pattern WORD = Pattern.compile("[\\p{L}\\p{N}']+");

    static List<String> words(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = WORD.matcher(text.toLowerCase(Locale.ROOT));
        while (m.find()) out.add(m.group());
        return out;
    }

    public static Result naiveBayes(List<TextClassificationReader.LabeledText> train, List<TextClassificationReader.LabeledText> test) {
        Map<String, Integer> docs = new HashMap<>(), totals = new HashMap<>();
        Map<String, Map<String, Integer>> wordCounts = new HashMap<>();
        java.util.Set<String> vocab = new java.util.HashSet<>();
        for (var t : train) {
            docs.merge(t.label(), 1, Integer::sum);
            Map<String, Integer> wc = wordCounts.computeIfAbsent(t.label(), k -> new HashMap<>());
            for (String w : words(t.text())) {
                wc.merge(w, 1, Integer::sum);
                totals.merge(t.label(), 1, Integer::sum);
                vocab.add(w);
            }
        }
        List<String> classes = new ArrayList<>(new java.util.TreeSet<>(docs.keySet()));
        int V = vocab.size();
        List<List<String>> gold = new ArrayList<>(), pred = new ArrayList<>();
        for (var t : test) {
            List<String> ws = words(t.text());
            String best = null;
            double bestScore = Double.NEGATIVE_INFINITY;
            for (String c : classes) {
                double s = Math.log((double) docs.get(c) / train.size());
                Map<String, Integer> wc = wordCounts.get(c);
                double denom = Math.log(totals.getOrDefault(c, 0) + V);
                for (String w : ws) if (vocab.contains(w)) s += Math.log(wc.getOrDefault(w, 0) + 1) - denom;
                if (s > bestScore) { bestScore = s; best = c; }
            }
            gold.add(List.of(t.label()));
            pred.add(List.of(best));
        }
        return result(gold, pred);
    }

    private static Result result(List<List<String>> gold, List<List<String>> pred) {
        return new Result(gold, pred, ClassificationReport.of(Evaluator.flat(gold), Evaluator.flat(pred)));
    }

    private static String argmax(Map<String, Integer> c) {
        String best = null;
        int n = -1;
        for (var e : c.entrySet())
            if (e.getValue() > n || e.getValue() == n && e.getKey().compareTo(best) < 0) { best = e.getKey(); n = e.getValue(); }
        return best;
    }
}
