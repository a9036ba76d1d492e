package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.track.Plot;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
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

    private static final Color LOW = new Color(247, 251, 255), HIGH = new Color(8, 48, 107);

    /**
     * A heatmap with the count written in each cell, gold labels down the left, predicted labels along the top.
     * Cells are shaded by their share of the row (the gold label's total): with imbalanced labels ("O" in NER)
     * shading by raw count would leave every other cell white.
     */
    public BufferedImage toImage(String title) {
        int n = labels.size();
        int cell = Math.clamp(720 / Math.max(n, 1), 28, 90);
        Font labelFont = new Font(Font.SANS_SERIF, Font.PLAIN, 13);
        Font countFont = new Font(Font.SANS_SERIF, Font.BOLD, Math.clamp(cell / 3, 9, 16));
        Font titleFont = new Font(Font.SANS_SERIF, Font.BOLD, 16);
        FontMetrics lfm = measure(labelFont);
        int longest = 0;
        for (String l : labels) longest = Math.max(longest, lfm.stringWidth(l));
        int margin = 20, axisTitle = 24;
        int left = margin + axisTitle + longest + 10;
        int top = margin + 30 + axisTitle + longest + 10; // column labels are drawn rotated, so they need height
        int width = left + n * cell + margin, height = top + n * cell + margin;
        width = Math.max(width, measure(titleFont).stringWidth(title) + 2 * margin);

        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            g.setColor(Color.BLACK);
            g.setFont(titleFont);
            g.drawString(title, margin, margin + 16);

            for (int i = 0; i < n; i++) {
                long rowTotal = 0;
                for (long c : counts[i]) rowTotal += c;
                for (int j = 0; j < n; j++) {
                    double f = rowTotal == 0 ? 0 : (double) counts[i][j] / rowTotal;
                    int x = left + j * cell, y = top + i * cell;
                    g.setColor(blend(LOW, HIGH, f));
                    g.fillRect(x, y, cell, cell);
                    g.setColor(f > 0.5 ? Color.WHITE : Color.BLACK);
                    g.setFont(countFont);
                    String s = Long.toString(counts[i][j]);
                    FontMetrics cfm = g.getFontMetrics();
                    g.drawString(s, x + (cell - cfm.stringWidth(s)) / 2, y + (cell + cfm.getAscent() - cfm.getDescent()) / 2);
                }
            }
            g.setColor(Color.GRAY);
            g.setStroke(new BasicStroke(1f));
            g.drawRect(left, top, n * cell, n * cell);

            g.setColor(Color.BLACK);
            g.setFont(labelFont);
            for (int i = 0; i < n; i++) { // gold labels, right-aligned to the grid
                String l = labels.get(i);
                g.drawString(l, left - 8 - lfm.stringWidth(l), top + i * cell + (cell + lfm.getAscent() - lfm.getDescent()) / 2);
            }
            AffineTransform saved = g.getTransform();
            for (int j = 0; j < n; j++) { // predicted labels, rotated to read bottom-up
                int x = left + j * cell + (cell + lfm.getAscent() - lfm.getDescent()) / 2;
                g.setTransform(saved);
                g.rotate(-Math.PI / 2, x, top - 8);
                g.drawString(labels.get(j), x, top - 8);
            }
            g.setTransform(saved);
            g.setFont(titleFont.deriveFont(Font.PLAIN, 14f));
            FontMetrics tfm = g.getFontMetrics();
            g.drawString("predicted", left + (n * cell - tfm.stringWidth("predicted")) / 2, margin + 30 + tfm.getAscent());
            g.rotate(-Math.PI / 2, margin + tfm.getAscent(), top + (n * cell + tfm.stringWidth("gold")) / 2.0);
            g.drawString("gold", margin + tfm.getAscent(), top + (n * cell + tfm.stringWidth("gold")) / 2);
            g.setTransform(saved);
        } finally {
            g.dispose();
        }
        return img;
    }

    /** Writes {@link #toImage} as PNG and returns the path. */
    public Path writePng(Path png, String title) { return Plot.writePng(toImage(title), png); }

    private static FontMetrics measure(Font f) {
        BufferedImage scratch = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = scratch.createGraphics();
        try {
            return g.getFontMetrics(f);
        } finally {
            g.dispose();
        }
    }

    private static Color blend(Color a, Color b, double f) {
        return new Color((int) Math.round(a.getRed() + (b.getRed() - a.getRed()) * f),
                (int) Math.round(a.getGreen() + (b.getGreen() - a.getGreen()) * f),
                (int) Math.round(a.getBlue() + (b.getBlue() - a.getBlue()) * f));
    }
}
