package ai.wafer.eval;

import ai.wafer.WaferException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * Per-label precision / recall / F1 / support of predicted labels against gold labels (token or sequence
 * classification), like scikit-learn's {@code classification_report}.
 *
 * <p>Differences from sklearn, by choice: the "micro avg" row is always shown (sklearn shows it only when some
 * labels are left out, otherwise it shows "accuracy" in its place), and "accuracy" is always shown too, as the
 * fraction of all items whose prediction equals the gold label (including items whose labels were excluded,
 * e.g. "O" in token-level NER). With no label excluded, micro-averaged P = R = F1 = accuracy.
 * Items whose gold or predicted label is not in the label list still count against the listed labels
 * (a predicted listed label with an unlisted gold label is a false positive), as in sklearn.
 */
public final class ClassificationReport {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final PrfTable table;
    private final double accuracy;
    private final long total;

    private ClassificationReport(PrfTable table, double accuracy, long total) {
        this.table = table;
        this.accuracy = accuracy;
        this.total = total;
    }

    /** Scores every label that occurs in gold or predictions, in sorted order. */
    public static ClassificationReport of(List<String> gold, List<String> pred) {
        return of(gold, pred, sortedLabels(gold, pred, List.of()));
    }

    /** Scores every label that occurs in gold or predictions except {@code excluded} (e.g. "O"), sorted. */
    public static ClassificationReport excluding(List<String> gold, List<String> pred, Collection<String> excluded) {
        return of(gold, pred, sortedLabels(gold, pred, excluded));
    }

    /** Scores exactly {@code labels}, in that order (a listed label that never occurs gets a row of zeros). */
    public static ClassificationReport of(List<String> gold, List<String> pred, List<String> labels) {
        checkSameLength(gold, pred);
        Map<String, Integer> index = index(labels);
        int n = labels.size();
        long[] tp = new long[n], fp = new long[n], fn = new long[n];
        long correct = 0;
        for (int i = 0; i < gold.size(); i++) {
            String g = gold.get(i), p = pred.get(i);
            if (g == null || p == null) throw new WaferException("missing (null) label at item " + i);
            Integer gi = index.get(g), pi = index.get(p);
            if (g.equals(p)) {
                correct++;
                if (gi != null) tp[gi]++;
            } else {
                if (pi != null) fp[pi]++;
                if (gi != null) fn[gi]++;
            }
        }
        double accuracy = gold.isEmpty() ? 0.0 : (double) correct / gold.size();
        return new ClassificationReport(PrfTable.fromCounts(labels, tp, fp, fn), accuracy, gold.size());
    }

    /**
     * A multi-label report (sklearn's on indicator matrices): per label, an item counts as a true positive when both
     * gold and predicted sets hold it; accuracy is the share of items whose predicted set equals the gold set.
     */
    public static ClassificationReport multiLabel(List<List<String>> gold, List<List<String>> pred) {
        checkSameLength(gold, pred);
        List<String> all = new java.util.ArrayList<>(), none = List.of();
        gold.forEach(all::addAll);
        pred.forEach(all::addAll);
        List<String> labels = sortedLabels(all, none, none);
        Map<String, Integer> index = index(labels);
        long[] tp = new long[labels.size()], fp = new long[labels.size()], fn = new long[labels.size()];
        long exact = 0;
        for (int i = 0; i < gold.size(); i++) {
            java.util.Set<String> g = new java.util.HashSet<>(gold.get(i)), p = new java.util.HashSet<>(pred.get(i));
            if (g.equals(p)) exact++;
            for (String l : p) if (g.contains(l)) tp[index.get(l)]++; else fp[index.get(l)]++;
            for (String l : g) if (!p.contains(l)) fn[index.get(l)]++;
        }
        return new ClassificationReport(PrfTable.fromCounts(labels, tp, fp, fn), gold.isEmpty() ? 0.0 : (double) exact / gold.size(), gold.size());
    }

    /** Each label's position in {@code labels}, which must not name one twice. */
    static Map<String, Integer> index(List<String> labels) {
        Map<String, Integer> index = new HashMap<>();
        for (String l : labels)
            if (index.put(Objects.requireNonNull(l, "label"), index.size()) != null)
                throw new WaferException("label list names '" + l + "' twice");
        return index;
    }

    static void checkSameLength(List<?> gold, List<?> pred) {
        if (gold.size() != pred.size())
            throw new WaferException("gold has " + gold.size() + " labels but predictions have " + pred.size());
    }

    static List<String> sortedLabels(List<String> gold, List<String> pred, Collection<String> excluded) {
        TreeSet<String> labels = new TreeSet<>(gold);
        labels.addAll(pred);
        labels.removeAll(excluded);
        return List.copyOf(labels);
    }

    public PrfTable table() { return table; }
    /** Fraction of all items predicted correctly. */
    public double accuracy() { return accuracy; }

    /** The report with two decimals, as sklearn's default. */
    public String toText() { return toText(2); }

    public String toText(int digits) { return table.format(digits, accuracy, total); }

    public Map<String, Object> toMap() { return table.toMap(accuracy); }

    public String toJson() {
        try {
            return JSON.writeValueAsString(toMap());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e); // a map of strings and numbers always serializes
        }
    }

    @Override public String toString() { return toText(); }
}
