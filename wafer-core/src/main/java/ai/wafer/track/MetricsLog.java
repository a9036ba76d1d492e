package ai.wafer.track;

import ai.wafer.WaferException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code metrics.jsonl} of a run directory: one JSON object per line (step, loss, lr, grad_norm,
 * tokens_per_s, eval_loss, elapsed_s, ... any subset per line). Every line is flushed as it is written
 * so a crash loses at most the line being written; a torn last line is skipped when reading.
 * Non-finite numbers are written as the strings "NaN" / "Infinity" (Jackson's default) so the file stays JSON.
 */
public final class MetricsLog implements Closeable {
    public static final String FILE_NAME = "metrics.jsonl";

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS) // tolerate bare NaN written by other tools
            .build();

    private final Path file;
    private final BufferedWriter out;

    private MetricsLog(Path file) throws IOException {
        this.file = file;
        this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }

    /** Opens (creating the directory and file if needed) {@code dir/metrics.jsonl} for appending. */
    public static MetricsLog open(Path dir) {
        try {
            Files.createDirectories(dir);
            Path file = dir.resolve(FILE_NAME);
            dropTornTail(file);
            return new MetricsLog(file);
        } catch (IOException e) {
            throw new WaferException("cannot open metrics log in " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * Opens the log of a run resumed from a checkpoint at {@code resumeStep}: rows with a step greater than
     * {@code resumeStep} were written after that checkpoint and are redone by the resumed run, so they are
     * removed first (rows without a step are kept). The rewrite goes through a temp file and an atomic move.
     */
    public static MetricsLog openForResume(Path dir, long resumeStep) {
        Path file = dir.resolve(FILE_NAME);
        try {
            Files.createDirectories(dir);
            if (Files.exists(file)) {
                List<String> kept = new ArrayList<>();
                List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
                for (int i = 0; i < lines.size(); i++) {
                    String line = lines.get(i);
                    if (line.isBlank()) continue;
                    Map<String, Object> row = parse(file, i + 1, line, i == lines.size() - 1);
                    if (row == null) continue; // torn last line
                    Object step = row.get("step");
                    if (step instanceof Number n && n.longValue() > resumeStep) continue;
                    kept.add(line);
                }
                StringBuilder text = new StringBuilder();
                for (String line : kept) text.append(line).append('\n');
                ai.wafer.io.AtomicFiles.writeString(file, text.toString());
            }
            return new MetricsLog(file);
        } catch (IOException e) {
            throw new WaferException("cannot resume metrics log " + file + ": " + e.getMessage(), e);
        }
    }

    public Path file() { return file; }

    /** Appends one row (insertion order of the map is kept) and flushes it to the OS. */
    public void log(Map<String, ?> row) {
        try {
            out.write(JSON.writeValueAsString(row));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** Appends a row {@code {"step": step, k1: v1, ...}}; keys and values alternate in {@code keyValues}. */
    public void log(long step, Object... keyValues) {
        if (keyValues.length % 2 != 0) throw new IllegalArgumentException("keys and values must alternate");
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("step", step);
        for (int i = 0; i < keyValues.length; i += 2) row.put((String) keyValues[i], keyValues[i + 1]);
        log(row);
    }

    @Override public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + file, e);
        }
    }

    /** Reads a metrics file (or the one in a run directory) as rows in file order. */
    public static List<Map<String, Object>> read(Path fileOrDir) {
        Path file = Files.isDirectory(fileOrDir) ? fileOrDir.resolve(FILE_NAME) : fileOrDir;
        if (!Files.isRegularFile(file)) throw new WaferException("no metrics log at " + file);
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int i = 0; i < lines.size(); i++) {
                if (lines.get(i).isBlank()) continue;
                Map<String, Object> row = parse(file, i + 1, lines.get(i), i == lines.size() - 1);
                if (row != null) rows.add(row);
            }
            return rows;
        } catch (IOException e) {
            throw new WaferException("cannot read metrics log " + file + ": " + e.getMessage(), e);
        }
    }

    /** A metric value as a double: numbers as they are, "NaN"/"Infinity" strings decoded, anything else NaN. */
    public static double asDouble(Object value) {
        if (value instanceof Number n) return n.doubleValue();
        if (value instanceof String s) {
            try { return Double.parseDouble(s); } catch (NumberFormatException e) { return Double.NaN; }
        }
        return Double.NaN;
    }

    /** Parses one line; a malformed last line is a crash mid-write and yields null, elsewhere it is an error. */
    private static Map<String, Object> parse(Path file, int lineNo, String line, boolean last) {
        try {
            return JSON.readValue(line, new TypeReference<LinkedHashMap<String, Object>>() {});
        } catch (JsonProcessingException e) {
            if (last) return null;
            throw new WaferException(file + ":" + lineNo + ": not a JSON object: " + e.getOriginalMessage());
        }
    }

    /**
     * Repairs an unterminated last line left by a crash so the next append starts on a fresh line:
     * a complete JSON object just gets its newline, a torn one is cut off.
     */
    private static void dropTornTail(Path file) throws IOException {
        if (!Files.exists(file) || Files.size(file) == 0) return;
        byte[] bytes = Files.readAllBytes(file);
        if (bytes[bytes.length - 1] == '\n') return;
        int cut = bytes.length;
        while (cut > 0 && bytes[cut - 1] != '\n') cut--;
        String tail = new String(bytes, cut, bytes.length - cut, StandardCharsets.UTF_8);
        if (parse(file, -1, tail, true) != null) {
            Files.writeString(file, "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
            return;
        }
        try (var ch = java.nio.channels.FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(cut);
        }
    }
}
