package ai.wafer.plot;

import ai.wafer.io.AtomicFiles;
import ai.wafer.WaferException;
import ai.wafer.eval.ConfusionMatrix;
import ai.wafer.track.MetricsLog;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Wafer's charts, the only code that draws (so that wafer-core needs no chart library): training curves of a run
 * as one PNG, train (and eval, when logged) loss against step on top, learning rate against step below (when
 * logged), read from the run's metrics.jsonl; several runs' curves on one chart; a confusion matrix's heatmap.
 */
public final class Plot {
    static {
        // charts are rendered off-screen; no display is needed (or present on training machines)
        System.setProperty("java.awt.headless", "true");
    }

    public static final int WIDTH = 1000, HEIGHT = 700;
    /** Share of the height the loss panel gets when a learning-rate panel is drawn below it. */
    private static final double LOSS_SHARE = 0.65;

    private Plot() {}

    /** Draws the curves of {@code runDirOrFile} (a run directory or a metrics.jsonl) into {@code png}. */
    public static Path write(Path runDirOrFile, Path png) {
        List<Map<String, Object>> rows = MetricsLog.read(runDirOrFile);
        Path runDir = Files.isDirectory(runDirOrFile) ? runDirOrFile : runDirOrFile.toAbsolutePath().getParent();
        String runName = runDir == null || runDir.getFileName() == null ? "run" : runDir.getFileName().toString();
        return writePng(render(rows, runName), png);
    }

    /**
     * The losses of several runs on one chart, each named by its directory: train loss as a line, eval loss with
     * markers, one colour per run (runs of one recipe in two precisions, say).
     */
    public static Path compare(List<Path> runs, Path png) {
        XYChart c = chart(HEIGHT, "loss", "loss");
        Color[] colors = {new Color(31, 119, 180), new Color(214, 39, 40), new Color(44, 160, 44), new Color(148, 103, 189), new Color(255, 127, 14)};
        Series anchor = null;
        java.util.Set<String> names = new java.util.HashSet<>();
        for (int i = 0; i < runs.size(); i++) {
            Path r = runs.get(i);
            List<Map<String, Object>> rows = MetricsLog.read(r);
            Path dir = Files.isDirectory(r) ? r : r.toAbsolutePath().getParent();
            String name = dir == null || dir.getFileName() == null ? "run " + (i + 1) : dir.getFileName().toString();
            if (!names.add(name)) name = r.toString(); // two runs/pretrain: their paths tell them apart
            Series train = series(rows, "loss"), eval = series(rows, "eval_loss");
            if (train.isEmpty() && eval.isEmpty()) throw new WaferException("run " + r + ": metrics have no step with loss or eval_loss to plot");
            Color col = colors[i % colors.length];
            if (!train.isEmpty()) {
                XYSeries s = c.addSeries(name + " train loss", train.steps(), train.values());
                s.setMarker(SeriesMarkers.NONE);
                s.setLineColor(new Color(col.getRed(), col.getGreen(), col.getBlue(), 110));
            }
            if (!eval.isEmpty()) {
                XYSeries s = c.addSeries(name + " eval loss", eval.steps(), eval.values());
                s.setMarker(SeriesMarkers.CIRCLE);
                s.setMarkerColor(col);
                s.setLineColor(col);
            }
            if (anchor == null) anchor = !train.isEmpty() ? train : eval;
        }
        addTickAnchor(c, anchor.steps().getFirst(), anchor.values().getFirst());
        return writePng(BitmapEncoder.getBufferedImage(c), png);
    }

    /**
     * A confusion matrix as a heatmap of each gold label's row in percent (sklearn's normalize="true"), gold labels
     * down the left, predicted along the bottom: with imbalanced labels ("O" in NER) raw counts would leave every
     * other cell white. The counts are {@link ConfusionMatrix#toText}'s.
     */
    public static BufferedImage confusion(ConfusionMatrix m, String title) {
        List<String> labels = m.labels();
        long[][] counts = m.counts();
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

    /** Writes {@link #confusion} as PNG and returns the path. */
    public static Path writeConfusion(ConfusionMatrix m, Path png, String title) { return writePng(confusion(m, title), png); }

    /** Writes {@code image} to {@code png}, making its directory if needed. */
    public static Path writePng(BufferedImage image, Path png) {
        AtomicFiles.write(png, tmp -> {
            if (!ImageIO.write(image, "png", tmp.toFile())) throw new IOException("no PNG writer");
        });
        return png;
    }

    /** Renders the rows; throws if there is neither a loss nor a learning rate to draw. */
    public static BufferedImage render(List<Map<String, Object>> rows, String runName) {
        Series train = series(rows, "loss"), eval = series(rows, "eval_loss"), lr = series(rows, "lr");
        if (train.isEmpty() && eval.isEmpty() && lr.isEmpty())
            throw new WaferException("run " + runName + ": metrics have no step with loss, eval_loss or lr to plot");

        boolean lossPanel = !train.isEmpty() || !eval.isEmpty();
        int lossHeight = !lossPanel ? 0 : lr.isEmpty() ? HEIGHT : (int) Math.round(HEIGHT * LOSS_SHARE);
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            if (lossPanel) {
                XYChart loss = chart(lossHeight, runName + ": loss", "loss");
                if (!train.isEmpty()) {
                    XYSeries s = loss.addSeries("train loss", train.steps(), train.values());
                    s.setMarker(SeriesMarkers.NONE);
                    s.setLineColor(new Color(31, 119, 180));
                }
                if (!eval.isEmpty()) {
                    XYSeries s = loss.addSeries("eval loss", eval.steps(), eval.values());
                    s.setMarker(SeriesMarkers.CIRCLE);
                    s.setMarkerColor(new Color(214, 39, 40));
                    s.setLineColor(new Color(214, 39, 40));
                }
                Series first = !train.isEmpty() ? train : eval;
                addTickAnchor(loss, first.steps().getFirst(), first.values().getFirst());
                g.drawImage(BitmapEncoder.getBufferedImage(loss), 0, 0, null);
            }
            if (!lr.isEmpty()) {
                // XChart's tick labels garble values around 1e-4; plot the mantissa and name the scale instead
                double max = lr.values().stream().mapToDouble(Math::abs).max().orElse(1);
                int exp = max > 0 ? (int) Math.floor(Math.log10(max)) : 0;
                double scale = Math.pow(10, -exp);
                String yTitle = exp == 0 ? "lr" : "lr (x1e" + exp + ")";
                XYChart rate = chart(HEIGHT - lossHeight, lossPanel ? "learning rate" : runName + ": learning rate", yTitle);
                List<Double> scaled = lr.values().stream().map(v -> v * scale).toList();
                XYSeries s = rate.addSeries("lr", lr.steps(), scaled);
                s.setMarker(SeriesMarkers.NONE);
                s.setLineColor(new Color(44, 160, 44));
                addTickAnchor(rate, lr.steps().getFirst(), scaled.getFirst());
                g.drawImage(BitmapEncoder.getBufferedImage(rate), 0, lossHeight, null);
            }
        } finally {
            g.dispose();
        }
        return image;
    }

    private static XYChart chart(int height, String title, String yTitle) {
        XYChart c = new XYChartBuilder().width(WIDTH).height(height).title(title).xAxisTitle("step").yAxisTitle(yTitle).build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        c.getStyler().setChartBackgroundColor(Color.WHITE);
        c.getStyler().setPlotBackgroundColor(Color.WHITE);
        c.getStyler().setPlotGridLinesColor(new Color(225, 225, 225));
        // steps start at 0 or 1; anchoring the axis at 0 gives round tick values instead of 1, 31, 61, ...
        c.getStyler().setXAxisMin(0.0);
        c.getStyler().setXAxisDecimalPattern("#,##0.##");
        return c;
    }

    /**
     * XChart labels the x axis with data values (1, 31, 61, ... packed edge to edge) when all x values are
     * evenly spaced, as logged steps are. One invisible point half a step in breaks the even spacing, so it
     * falls back to round tick values (0, 100, 200, ...).
     */
    private static void addTickAnchor(XYChart c, double x, double y) {
        XYSeries anchor = c.addSeries(" anchor", new double[] {x + 0.5}, new double[] {y});
        anchor.setShowInLegend(false);
        anchor.setMarker(SeriesMarkers.NONE);
        anchor.setLineColor(new Color(0, 0, 0, 0));
    }

    /** Points (step, value) of rows that have both, finite; a diverged NaN loss is left out rather than breaking the axis. */
    private record Series(List<Double> steps, List<Double> values) {
        boolean isEmpty() { return steps.isEmpty(); }
    }

    private static Series series(List<Map<String, Object>> rows, String key) {
        List<Double> steps = new ArrayList<>(), values = new ArrayList<>();
        for (Map<String, Object> row : rows) {
            if (!row.containsKey("step") || !row.containsKey(key)) continue;
            double step = MetricsLog.asDouble(row.get("step")), v = MetricsLog.asDouble(row.get(key));
            if (!Double.isFinite(step) || !Double.isFinite(v)) continue;
            steps.add(step);
            values.add(v);
        }
        return new Series(steps, values);
    }
}
