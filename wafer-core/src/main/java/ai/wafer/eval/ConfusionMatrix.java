package ai.wafer.eval;

import ai.wafer.WaferException;

import java.util.List;
import java.util.Map;

/**
 * Counts of (gold, predicted) label pairs: row = gold label, column = predicted label (sklearn's convention).
 * Pairs with a label outside the label list are not counted. Renders as aligned text (the heatmap: wafer-cli's {@code Plot.confusion}).
 */
public final class ConfusionMatrix {
    private final List<String> labels;
    private final long[][] counts;

    private ConfusionMatrix(List<String> labels, long[][] counts) {
        this.labels = labels;
        this.counts = counts;
    }

    /** Over every label occurring in gold or predictions, sorted. */
    public static ConfusionMatrix of(List<String> gold, List<String> pred) {
        return of(gold, pred, ClassificationReport.sortedLabels(gold, pred, List.of()));
    }

    /** Over exactly {@code labels}, in that order. */
    public static ConfusionMatrix of(List<String> gold, List<String> pred, List<String> labels) {
        ClassificationReport.checkSameLength(gold, pred);
        Map<String, Integer> index = ClassificationReport.index(labels);
        long[][] counts = new long[labels.size()][labels.size()];
        for (int i = 0; i < gold.size(); i++) {
            Integer g = index.get(gold.get(i)), p = index.get(pred.get(i));
            if (g != null && p != null) counts[g][p]++;
        }
        return new ConfusionMatrix(List.copyOf(labels), counts);
    }

    public List<String> labels() { return labels; }

    /** How often gold label {@code gold} was predicted as {@code predicted}. */
    public long count(String gold, String predicted) {
        int g = labels.indexOf(gold), p = labels.indexOf(predicted);
        if (g < 0 || p < 0) throw new WaferException("label not in the matrix: " + (g < 0 ? gold : predicted));
        return counts[g][p];
    }

    /** A copy of the counts, [gold][predicted]. */
    public long[][] counts() {
        long[][] copy = new long[counts.length][];
        for (int i = 0; i < counts.length; i++) copy[i] = counts[i].clone();
        return copy;
    }

    /** Right-aligned table; the corner cell says which axis is which. */
    public String toText() {
        String corner = "gold\\pred";
        int first = corner.length();
        for (String l : labels) first = Math.max(first, l.length());
        int[] widths = new int[labels.size()];
        for (int j = 0; j < labels.size(); j++) {
            widths[j] = labels.get(j).length();
            for (long[] row : counts) widths[j] = Math.max(widths[j], Long.toString(row[j]).length());
        }
        StringBuilder sb = new StringBuilder();
        sb.append(PrfTable.pad(corner, first));
        for (int j = 0; j < labels.size(); j++) sb.append("  ").append(PrfTable.pad(labels.get(j), widths[j]));
        sb.append('\n');
        for (int i = 0; i < labels.size(); i++) {
            sb.append(PrfTable.pad(labels.get(i), first));
            for (int j = 0; j < labels.size(); j++) sb.append("  ").append(PrfTable.pad(Long.toString(counts[i][j]), widths[j]));
            sb.append('\n');
        }
        return sb.toString();
    }

    @Override public String toString() { return toText(); }
}
