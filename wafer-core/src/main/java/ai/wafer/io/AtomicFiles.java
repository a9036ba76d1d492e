package ai.wafer.io;

import ai.wafer.WaferException;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Every output file Wafer writes goes through here: it is written to a temporary sibling, forced to disk, and
 * renamed over the target, so a reader sees the old file or the complete new one, never a part. When the
 * write fails, the temporary file is removed and an existing target is left as it was.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Writes the content of a file to {@code tmp}. */
    public interface Writer { void write(Path tmp) throws IOException; }

    /** Runs {@code write} on a temporary sibling of {@code file}, forces it to disk, then renames it over {@code file}. */
    public static void write(Path file, Writer write) {
        Path abs = file.toAbsolutePath();
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
        boolean done = false;
        try {
            if (abs.getParent() != null) Files.createDirectories(abs.getParent());
            write.write(tmp);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } catch (IOException e) {
            throw new WaferException(file + ": cannot write: " + e, e);
        } finally {
            if (!done) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the original error is the one worth reporting
                }
            }
        }
    }

    public static void writeString(Path file, String text) {
        write(file, tmp -> Files.writeString(tmp, text, StandardCharsets.UTF_8));
    }

    public static void copy(Path from, Path to) {
        write(to, tmp -> Files.copy(from, tmp, StandardCopyOption.REPLACE_EXISTING));
    }

    /** Deletes {@code p} and everything under it (nothing when it does not exist): an old checkpoint, an emptied --out. */
    public static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (java.util.stream.Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(q);
        }
    }
}
