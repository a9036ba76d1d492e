package ai.wafer.testutil;

import ai.wafer.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/** Where the reference fixtures are, and comparisons against them. */
public final class Fixtures {
    private Fixtures() {}

    /** Where the fixtures live: inside the repository, so a clone runs every test with nothing beside it. */
    public static final Path FIXTURES = Path.of("wafer-core", "src", "test", "resources", "fixtures");

    /**
     * The GPT-2 tokenizer (vocab.json, merges.txt): the copy the demo uses, data/gpt2-tokenizer, byte for
     * byte the files the reference cases were made with (see wafer-core/src/test/resources/fixtures/README.md).
     */
    public static final Path TOKENIZER = Path.of("data", "gpt2-tokenizer");

    /** A fixture made by torch_ref.py, wafer-core/src/test/resources/fixtures/NAME; a missing one fails, never skips. */
    public static Path fixture(String name) {
        Path p = FIXTURES.resolve(name);
        if (!Files.isDirectory(p)) fail("fixture " + p.toAbsolutePath() + " is missing");
        return p;
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
