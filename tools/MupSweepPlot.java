import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The µP sweep's plot (tools/mup_sweep.sh): held-out loss against learning rate (log axis), one line per width,
 * standard parametrisation on the left and µP on the right, with XChart (the chart library of `wafer plot`).
 * java --class-path "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/MupSweepPlot.java results.tsv out.png
 */
public class MupSweepPlot {
    public static void main(String[] args) throws Exception {
        System.setProperty("java.awt.headless", "true");
        // param -> width -> lr -> held-out loss
        Map<String, Map<Integer, TreeMap<Double, Double>>> runs = new TreeMap<>();
        List<String> lines = Files.readAllLines(Path.of(args[0]));
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split("\t");
            runs.computeIfAbsent(f[0], k -> new TreeMap<>()).computeIfAbsent(Integer.parseInt(f[1]), k -> new TreeMap<>())
                    .put(Double.parseDouble(f[2]), Double.parseDouble(f[4]));
        }
        var losses = runs.values().stream().flatMap(m -> m.values().stream()).flatMap(m -> m.values().stream())
                .filter(Double::isFinite).toList();
        double lo = losses.stream().min(Double::compare).orElse(0.0), hi = losses.stream().max(Double::compare).orElse(1.0);
        var all = runs.values().stream().flatMap(m -> m.values().stream()).flatMap(m -> m.keySet().stream()).toList();
        double lrMin = all.stream().min(Double::compare).orElse(1e-3), lrMax = all.stream().max(Double::compare).orElse(1e-1);
        BufferedImage image = new BufferedImage(1400, 560, BufferedImage.TYPE_INT_RGB);
        var g = image.createGraphics();
        Color[] colors = {new Color(31, 119, 180), new Color(214, 39, 40), new Color(44, 160, 44)};
        int x = 0;
        for (String param : List.of("sp", "mup")) {
            XYChart c = new XYChartBuilder().width(700).height(560)
                    .title((param.equals("mup") ? "µP (--mup --mup-base-width 64)" : "standard parametrisation") + ": held-out loss")
                    .xAxisTitle("learning rate").yAxisTitle("held-out loss (nats/token)").build();
            c.getStyler().setXAxisLogarithmic(true);
            c.getStyler().setXAxisMin(lrMin / 1.5);
            c.getStyler().setXAxisMax(lrMax * 1.5);
            c.getStyler().setYAxisMin(Math.floor(lo * 20) / 20);
            c.getStyler().setYAxisMax(Math.ceil(hi * 20) / 20);
            c.getStyler().setChartBackgroundColor(Color.WHITE);
            c.getStyler().setPlotBackgroundColor(Color.WHITE);
            c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
            int i = 0;
            for (var w : runs.getOrDefault(param, new TreeMap<>()).entrySet()) {
                List<Double> lrs = new ArrayList<>(), loss = new ArrayList<>();
                w.getValue().forEach((lr, l) -> { if (Double.isFinite(l)) { lrs.add(lr); loss.add(l); } });
                var s = c.addSeries("width " + w.getKey(), lrs, loss);
                s.setMarker(SeriesMarkers.CIRCLE);
                s.setLineColor(colors[i % colors.length]);
                s.setMarkerColor(colors[i++ % colors.length]);
            }
            g.drawImage(BitmapEncoder.getBufferedImage(c), x, 0, null);
            x += 700;
        }
        g.dispose();
        ImageIO.write(image, "png", Path.of(args[1]).toFile());
        System.out.println("wrote " + args[1]);
    }
}
