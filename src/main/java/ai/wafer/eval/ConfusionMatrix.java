package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.track.Plot;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Counts of (gold, predicted) label pairs: row = gold label, column = predicted label (sklearn's convention).
 * Pairs with a label outside the label list are not counted. Renders as aligned text or a PNG heatmap.
 */
public final class ConfusionMatrix {
    static {
        // drawn off-screen; evaluation machines have no display
        System.setProperty("java.awt.headless", "true");
    }

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

    // ---- heatmap ----

    /**
     * A heatmap of each gold label's row in percent (sklearn's normalize="true"), gold labels down the left,
     * predicted along the bottom: with imbalanced labels ("O" in NER) raw counts would leave every other cell
     * white. The counts are {@link #toText}'s.
     */
    public BufferedImage toImage(String title) {
        int n = labels.size(), cell = Math.clamp(720 / Math.max(n, 1), 28, 90);
        HeatMapChart chart = new HeatMapChartBuilder().width(n * cell + 300).height(n * cell + 220)
                .title(title + " (% of each gold label)").xAxisTitle("predicted").yAxisTitle("gold").build();
        chart.getStyler().setShowValue(true).setMin(0).setMax(100).setHeatMapValueDecimalPattern("0")
                .setRangeColors(new Color[] {new Color(247, 251, 255), new Color(8, 48, 107)}).setLegendVisible(false);
        chart.getStyler().setXAxisLabelRotation(90).setChartBackgroundColor(Color.WHITE);
        List<Number[]> heat = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long row = Arrays.stream(counts[i]).sum();
            for (int j = 0; j < n; j++) heat.add(new Number[] {j, n - 1 - i, row == 0 ? 0 : 100.0 * counts[i][j] / row});
        }
        chart.addSeries("share", labels, labels.reversed(), heat); // y categories run upwards: the first gold label on top
        return BitmapEncoder.getBufferedImage(chart);
    }

    /** Writes {@link #toImage} as PNG and returns the path. */
    public Path writePng(Path png, String title) { return Plot.writePng(toImage(title), png); }
}
