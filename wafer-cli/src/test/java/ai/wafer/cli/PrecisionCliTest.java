package ai.wafer.cli;

import ai.wafer.tensor.Precision;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --precision}: bench train runs in bf16 and says which path its products take; an unknown value is refused. */
class PrecisionCliTest {
    @AfterEach
    void reset() { Precision.select(Precision.fp32); }

    @Test
    void benchTrainInBf16() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        PrintStream o = System.out, e = System.err;
        int code;
        try {
            System.setOut(new PrintStream(out, true));
            System.setErr(new PrintStream(err, true));
            code = Wafer.commandLine().execute("bench", "train", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--vocab-size", "64",
                    "--batch-size", "2", "--seq-len", "16", "--steps", "1", "--json", "--precision", "bf16");
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
        assertEquals(0, code, err.toString());
        assertTrue(out.toString().contains("\"precision\": \"bf16\""), out.toString());
        assertTrue(err.toString().contains("bf16 GEMM: "), err.toString());
        assertEquals(Precision.bf16, Precision.selected());

        StringWriter refused = new StringWriter();
        CommandLine cl = Wafer.commandLine();
        cl.setErr(new PrintWriter(refused, true));
        assertEquals(2, cl.execute("bench", "train", "--precision", "fp16"));
        assertTrue(refused.toString().contains("--precision") && refused.toString().contains("fp32, bf16"), refused.toString());
    }
}
