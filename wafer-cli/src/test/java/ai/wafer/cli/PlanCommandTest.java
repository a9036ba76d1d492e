package ai.wafer.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.*;

/** {@code wafer plan --generate} and {@code --dtype}: the numbers follow the shapes; training-only options are refused. */
class PlanCommandTest {
    private static String run(int rc, String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = Wafer.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        assertEquals(rc, cl.execute(args), err.toString());
        return out + err.toString();
    }

    @Test void generationPlansWeightsCacheAndStreaming() {
        // 13B int8: 12.85B parameters, the matrices but wpe at one byte, the rest float32; KV cache 2 x 40 x 5120 x 32 x 4 bytes
        String int8 = run(0, "plan", "--preset", "cerebras-gpt-13b", "--generate", "--dtype", "int8", "--batch-size", "1", "--seq-len", "32",
                "--memory-per-machine", "24GB");
        assertTrue(int8.contains("KV cache                     50.0 MiB"), int8);
        assertTrue(int8.contains("fits in"), int8);
        String bf16 = run(0, "plan", "--preset", "cerebras-gpt-13b", "--generate", "--dtype", "bf16", "--batch-size", "1", "--seq-len", "32",
                "--memory-per-machine", "24GB");
        assertTrue(bf16.contains("does NOT fit") && bf16.contains("the blocks stream"), bf16);
        assertTrue(run(2, "plan", "--preset", "cerebras-gpt-111m", "--generate", "--zero1").contains("--zero1 plans training"));
        assertTrue(run(2, "plan", "--preset", "cerebras-gpt-111m", "--dtype", "int8").contains("--trainable-fraction below 1"));
    }
}
