package ai.wafer.plot;

import ai.wafer.WaferException;
import ai.wafer.cli.Wafer;
import ai.wafer.eval.ConfusionMatrix;
import ai.wafer.track.MetricsLog;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class PlotTest {
    @TempDir Path dir;

    private Path sampleRun() {
        Path run = dir.resolve("gpt-111m-test");
        try (MetricsLog log = MetricsLog.open(run)) {
            for (int s = 1; s <= 200; s++) {
                double lr = s < 20 ? 6e-4 * s / 20 : 6e-4 * (0.5 + 0.5 * Math.cos(Math.PI * (s - 20) / 180));
                log.log(s, "loss", 10.0 * Math.exp(-s / 60.0) + 2.5 + 0.2 * Math.sin(s), "lr", lr);
                if (s % 25 == 0) log.log(s, "eval_loss", 10.0 * Math.exp(-s / 60.0) + 2.8);
            }
        }
        return run;
    }

    @Test void writesANonBlankPng() throws Exception {
        Path png = Plot.write(sampleRun(), dir.resolve("out/curves.png"));
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img, "decodes as an image");
        assertEquals(Plot.WIDTH, img.getWidth());
        assertEquals(Plot.HEIGHT, img.getHeight());
        assertTrue(nonBackgroundPixels(img, img.getHeight() / 6, img.getHeight() / 2) > 500, "loss panel has ink");
        assertTrue(nonBackgroundPixels(img, img.getHeight() * 3 / 4, img.getHeight() * 9 / 10) > 200, "lr panel has ink");
    }

    @Test void cliWritesCurvesPngIntoTheRunDirByDefault() throws Exception {
        Path run = sampleRun();
        StringWriter out = new StringWriter();
        CommandLine cl = Wafer.commandLine();
        cl.setOut(new PrintWriter(out));
        int rc = cl.execute("plot", run.toString());
        assertEquals(0, rc);
        Path png = run.resolve("curves.png");
        assertTrue(Files.isRegularFile(png));
        assertEquals(png.toString(), out.toString().strip());
        assertNotNull(ImageIO.read(png.toFile()));
    }

    @Test void lossOnlyRunsPlotWithoutALearningRatePanel() throws Exception {
        Path run = dir.resolve("r");
        try (MetricsLog log = MetricsLog.open(run)) {
            for (int s = 0; s < 10; s++) log.log(s, "loss", 5.0 - s * 0.1);
        }
        BufferedImage img = ImageIO.read(Plot.write(run, run.resolve("c.png")).toFile());
        assertTrue(nonBackgroundPixels(img, img.getHeight() / 6, img.getHeight() * 5 / 6) > 500);
    }

    @Test void nothingToPlotIsAUserError() {
        Path run = dir.resolve("empty");
        try (MetricsLog log = MetricsLog.open(run)) {
            log.log(1, "tokens_per_s", 100);
        }
        assertThrows(WaferException.class, () -> Plot.write(run, run.resolve("c.png")));
    }

    @Test void comparesRunsOnOneChartAndNeedsAnOutput() throws Exception {
        Path a = sampleRun(), b = dir.resolve("other/gpt-111m-test"); // the same directory name: told apart by path
        try (MetricsLog log = MetricsLog.open(b)) {
            for (int s = 1; s <= 200; s += 10) log.log(s, "loss", 9.0 - s / 50.0, "eval_loss", 9.2 - s / 50.0);
        }
        BufferedImage img = ImageIO.read(Plot.compare(List.of(a, b), dir.resolve("both.png")).toFile());
        assertEquals(Plot.HEIGHT, img.getHeight());
        assertTrue(nonBackgroundPixels(img, img.getHeight() / 6, img.getHeight() * 5 / 6) > 800, "two runs' curves drawn");
        CommandLine cl = Wafer.commandLine();
        cl.setErr(new PrintWriter(new StringWriter()));
        assertEquals(2, cl.execute("plot", a.toString(), b.toString()), "comparing runs without --out is refused");
    }

    /** Pixels in the horizontal band [y0, y1) of the plot area that are neither white nor near-white. */
    private static int nonBackgroundPixels(BufferedImage img, int y0, int y1) {
        int n = 0;
        for (int y = y0; y < y1; y++)
            for (int x = img.getWidth() / 10; x < img.getWidth() * 9 / 10; x++) {
                int rgb = img.getRGB(x, y);
                int r = (rgb >> 16) & 0xFF, g = (rgb >> 8) & 0xFF, b = rgb & 0xFF;
                if (r < 200 || g < 200 || b < 200) n++;
            }
        return n;
    }

    @Test void heatmapIsAReadableNonBlankPng() throws Exception {
        ConfusionMatrix m = ConfusionMatrix.of(List.of("A", "A", "A", "B", "B", "C", "C", "C", "C", "D"), List.of("A", "A", "B", "B", "A", "C", "C", "E", "B", "C"));
        Path png = Plot.writeConfusion(m, dir.resolve("cm.png"), "confusion matrix");
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img);
        int dark = 0;
        for (int y = 0; y < img.getHeight(); y++)
            for (int x = 0; x < img.getWidth(); x++)
                if ((img.getRGB(x, y) & 0xFF) < 150) dark++;
        assertTrue(dark > 1000, "the largest cells are dark blue; dark pixels: " + dark);
    }
}
