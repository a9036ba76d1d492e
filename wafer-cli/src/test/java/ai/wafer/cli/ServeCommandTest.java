package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code wafer serve}'s options: the API key from a file, and a port it cannot listen on. */
class ServeCommandTest {
    @TempDir Path tmp;

    static ServeCommand parse(String... args) {
        ServeCommand c = new ServeCommand();
        new CommandLine(c).parseArgs(args);
        return c;
    }

    /** Issue 13, item 13: the key can come from a file, so it is not in the process list. */
    @Test void theApiKeyComesFromAFile() throws Exception {
        Path f = Files.writeString(tmp.resolve("key"), "s3cret-key\n");
        assertEquals("s3cret-key", parse("--model", "m", "--api-key-file", f.toString()).config().apiKey());
        assertEquals("other", parse("--model", "m", "--api-key", "other").config().apiKey());
        var both = assertThrows(WaferException.class, () -> parse("--model", "m", "--api-key", "x", "--api-key-file", f.toString()).config());
        assertTrue(both.getMessage().contains("not both"), both.getMessage());
        var missing = assertThrows(WaferException.class, () -> parse("--model", "m", "--api-key-file", tmp.resolve("nope").toString()).config());
        assertTrue(missing.getMessage().contains("--api-key-file"), missing.getMessage());
        Path empty = Files.writeString(tmp.resolve("empty"), "\n");
        var blank = assertThrows(WaferException.class, () -> parse("--model", "m", "--api-key-file", empty.toString()).config());
        assertTrue(blank.getMessage().contains("empty"), blank.getMessage());
    }

    /** Issue 13, item 19: a port in use or out of range is one line of error and exit code 2, not a stack trace. */
    @Test void aPortInUseOrOutOfRangeIsOneLineAndExitTwo() throws Exception {
        Path model = tmp.resolve("model");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 64, 16), 1), model);
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = taken.getLocalPort();
            String err = serveError(model, String.valueOf(port));
            assertTrue(err.contains("cannot listen on 127.0.0.1:" + port), err);
        }
        for (String port : new String[] {"70000", "-1"}) assertTrue(serveError(model, port).contains("--port " + port));
    }

    /** Issue 16: several adapters are NAME=DIR each; a bare DIR among them, a name twice or a missing root is one line, exit 2. */
    @Test void severalAdaptersNeedNames() throws Exception {
        Path model = tmp.resolve("model");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 64, 16), 1), model);
        String m = model.toString();
        for (String[] args : new String[][] {{"--adapter", "a=x", "--adapter", "y"}, {"--adapter", "a=x", "--adapter", "a=y"},
                {"--adapter", "x", "--adapter-root", m}, {"--adapter-root", tmp.resolve("nope").toString()}, {"--adapter", "a=" + tmp.resolve("nope")}}) {
            List<String> full = new ArrayList<>(List.of("serve", "--model", m, "--port", "0"));
            full.addAll(List.of(args));
            PretrainCliTest.Run r = PretrainCliTest.wafer(full.toArray(String[]::new));
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().contains("--adapter"), r.err());
        }
    }

    /** What {@code wafer serve --model model --port port} writes to stderr (the command's and the libraries' logs), as one line with exit code 2. */
    static String serveError(Path model, String port) {
        var oldErr = System.err;
        var logged = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(logged, true));
        try {
            PretrainCliTest.Run r = PretrainCliTest.wafer("serve", "--model", model.toString(), "--port", port);
            String err = r.err() + logged;
            assertEquals(2, r.code(), err);
            assertEquals(1, err.strip().lines().count(), err);
            return err;
        } finally {
            System.setErr(oldErr);
        }
    }
}
