package ai.wafer.io;

import ai.wafer.WaferException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The one check before a command writes a directory (a run, a model, shards): an existing, non-empty
 * directory is another run's or model's, so it is written into only when the user said what to do with it:
 * {@code --resume} continues it, {@code --overwrite} empties it first. A directory that is one of the
 * command's inputs is never written into.
 */
public final class OutputDir {
    private OutputDir() {}

    /** What Wafer leaves in a directory; {@code --overwrite} empties only a directory holding one of these. */
    private static final List<String> MARKERS = List.of("config.json", "metrics.jsonl", "adapter_config.json", "checkpoints",
            "train_000000.bin", "val_000000.bin");

    /**
     * Refuses {@code out} when it is one of {@code inputs}, or already holds files and neither {@code resume} nor
     * {@code overwrite} is set; with {@code overwrite}, empties it. {@code resumable}: the command has --resume.
     */
    public static void claim(Path out, boolean resumable, boolean resume, boolean overwrite, List<Path> inputs) {
        if (resume && overwrite) throw new WaferException("give --resume or --overwrite, not both");
        Path o = out.toAbsolutePath().normalize();
        for (Path in : inputs) {
            if (in != null && in.toAbsolutePath().normalize().equals(o))
                throw new WaferException("--out " + out + " is an input of this command; write to another directory");
        }
        if (!Files.exists(o)) return;
        if (!Files.isDirectory(o)) throw new WaferException("--out " + out + " is a file, not a directory");
        if (isEmpty(o) || resume) return;
        String flags = resumable ? "--resume " + out + " to continue it or --overwrite to replace it" : "--overwrite to replace it";
        if (!overwrite) throw new WaferException(out + " already holds files (an earlier run or model?): give " + flags
                + ", or choose another --out");
        if (MARKERS.stream().noneMatch(m -> Files.exists(o.resolve(m))))
            throw new WaferException(out + " holds files that Wafer did not write; --overwrite empties only a Wafer run or model directory: remove them yourself");
        for (Path in : inputs) {
            if (in != null && in.toAbsolutePath().normalize().startsWith(o))
                throw new WaferException("--overwrite would delete the input " + in + ", which is inside --out " + out);
        }
        try (Stream<Path> children = Files.list(o)) {
            for (Path p : children.toList()) AtomicFiles.deleteTree(p);
        } catch (IOException e) {
            throw new WaferException(out + ": cannot empty it for --overwrite: " + e.getMessage(), e);
        }
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            throw new WaferException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }
}
