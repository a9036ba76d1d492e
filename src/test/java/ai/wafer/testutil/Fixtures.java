package ai.wafer.testutil;

import ai.wafer.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Where the reference fixtures are, and comparisons against them. */
public final class Fixtures {
    private Fixtures() {}

    /** ../shared beside the repository (also in CI); tests that need it are skipped when absent. */
    public static Path shared() {
        Path p = Path.of("..", "shared").toAbsolutePath().normalize();
        assumeTrue(Files.isDirectory(p), "../shared is not present");
        return p;
    }

    /** A fixture directory made by torch_ref.py: ../shared/fixtures/NAME, or src/test/resources/fixtures/NAME. */
    public static Path fixture(String name) {
        Path local = Path.of("src", "test", "resources", "fixtures", name);
        if (Files.isDirectory(local)) return local;
        return shared().resolve("fixtures").resolve(name);
    }

    /**
     * Asserts |actual - expected| <= rtol * max(|expected|, floor) element-wise, where floor is 1% of the
     * tensor's largest magnitude: relative where values are large, and not fooled by values near zero.
     */
    public static void assertClose(String what, float[] expected, float[] actual, double rtol) {
        if (expected.length != actual.length) fail(what + ": length " + actual.length + " != " + expected.length);
        double maxAbs = 0;
        for (float e : expected) maxAbs = Math.max(maxAbs, Math.abs(e));
        double floor = 0.01 * maxAbs + 1e-30;
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs((double) actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor);
            if (!(err <= worst)) { worst = err; worstAt = i; }
        }
        if (!(worst <= rtol))
            fail(what + ": relative error " + worst + " > " + rtol + " at " + worstAt + " (expected "
                    + expected[worstAt] + ", got " + actual[worstAt] + ")");
    }

    public static float[] tensor(Path file, String name) {
        try (SafeTensors.Reader r = SafeTensors.open(file)) { return r.floats(name); }
    }
}
