package ai.wafer.io;

import ai.wafer.WaferException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Issue 13 item 1: a failed write leaves the old file as it was and no temporary file behind. */
class AtomicFilesTest {
    @TempDir Path tmp;

    @Test
    void aFailedWriteKeepsTheOldFile() throws Exception {
        Path f = tmp.resolve("report.json");
        AtomicFiles.writeString(f, "old");
        for (RuntimeException thrown : new RuntimeException[] {null, new IllegalStateException("boom")}) {
            var e = assertThrows(RuntimeException.class, () -> AtomicFiles.write(f, t -> {
                Files.writeString(t, "half of the new");
                if (thrown != null) throw thrown;
                throw new IOException("disk full");
            }));
            assertTrue(thrown != null ? e == thrown : e instanceof WaferException && e.getMessage().contains("disk full"), e.toString());
            assertEquals("old", Files.readString(f));
            try (Stream<Path> s = Files.list(tmp)) {
                assertEquals(List.of(f), s.toList());
            }
        }
        AtomicFiles.writeString(f, "new");
        assertEquals("new", Files.readString(f));
    }
}
