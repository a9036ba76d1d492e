package ai.wafer.data;

import ai.wafer.WaferException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Streams the documents of text files, one at a time, so a corpus never has to fit in memory.
 *
 * <p>What a document is:
 * <ul>
 *   <li>{@code .jsonl} / {@code .json} files: each non-blank line is a JSON object; its {@code text} field is one document;
 *   <li>any other file is UTF-8 plain text: a document is a block of consecutive non-blank lines, blocks are
 *       separated by one or more blank (empty or whitespace-only) lines, and its lines are joined with "\n"
 *       (so a file without blank lines is one document). Line ends may be "\n" or "\r\n".
 * </ul>
 * Directories are read recursively, files in name order. Bad input is reported to the {@link Sink}, not
 * fatal: an empty file is skipped, a line of invalid UTF-8 is decoded with U+FFFD in place of the bad
 * bytes, a JSONL line without a string {@code text} is skipped.
 */
public final class TextDocuments {
    /** Receives documents and reports, in order. */
    public interface Sink {
        void document(String text) throws IOException;
        /** {@code message} says file, line and what is wrong. */
        default void warning(String message) {}
        /** Called as input is consumed, with the bytes read since the last call. */
        default void bytesRead(long bytes) {}
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private TextDocuments() {}

    /** The files under {@code inputs} (files as given, directories recursively in name order). */
    public static List<Path> files(List<Path> inputs) {
        List<Path> out = new ArrayList<>();
        for (Path p : inputs) {
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.walk(p)) {
                    s.filter(Files::isRegularFile).sorted().forEach(out::add);
                } catch (IOException e) {
                    throw new WaferException(p + ": cannot list: " + e.getMessage(), e);
                }
            } else if (Files.isRegularFile(p)) {
                out.add(p);
            } else {
                throw new WaferException(p + ": no such file or directory");
            }
        }
        return out;
    }

    /** Total size of the files, for progress. */
    public static long totalBytes(List<Path> files) {
        long sum = 0;
        for (Path f : files) {
            try { sum += Files.size(f); } catch (IOException ignored) { /* reported when read */ }
        }
        return sum;
    }

    public static boolean isJsonl(Path f) {
        String n = f.getFileName().toString().toLowerCase();
        return n.endsWith(".jsonl") || n.endsWith(".json");
    }

    /** Streams the documents of every file to {@code sink}. */
    public static void read(List<Path> files, Sink sink) throws IOException {
        for (Path f : files) read(f, sink);
    }

    public static void read(Path file, Sink sink) throws IOException {
        if (Files.size(file) == 0) {
            sink.warning(file + ": empty file, skipped");
            return;
        }
        boolean jsonl = isJsonl(file);
        StringBuilder block = new StringBuilder();
        int[] badLines = {0};
        long[] lone = {0, 0, 0}; // lone surrogates: count, first line, first character
        try (Lines lines = new Lines(Files.newInputStream(file), file, sink, badLines)) {
            String line;
            while ((line = lines.next()) != null) {
                if (jsonl) {
                    if (!line.isBlank()) jsonDocument(file, lines.number, line, sink, lone);
                } else if (line.isBlank()) {
                    if (!block.isEmpty()) { sink.document(block.toString()); block.setLength(0); }
                } else {
                    if (!block.isEmpty()) block.append('\n');
                    block.append(line);
                }
            }
            if (!block.isEmpty()) sink.document(block.toString());
        }
        if (lone[0] > 0) sink.warning(file + ": " + lone[0] + " lone UTF-16 surrogates (\\uD800-\\uDFFF escapes without their pair) in \"text\", "
                + "first at line " + lone[1] + ", character " + lone[2] + " of the text; each is encoded as \"?\"");
        if (badLines[0] > 1) sink.warning(file + ": " + badLines[0] + " lines of invalid UTF-8 in all (U+FFFD used in their place)");
    }

    private static void jsonDocument(Path file, long line, String text, Sink sink, long[] lone) throws IOException {
        JsonNode node;
        try {
            node = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            sink.warning(file + ":" + line + ": not valid JSON, skipped (" + e.getOriginalMessage() + ")");
            return;
        }
        JsonNode t = node == null ? null : node.get("text");
        if (t == null || !t.isTextual()) {
            sink.warning(file + ":" + line + ": no string field \"text\", skipped");
            return;
        }
        String s = t.asText();
        for (int i = 0; i < s.length(); i++) {
            if (!Character.isSurrogate(s.charAt(i))) continue;
            if (Character.isHighSurrogate(s.charAt(i)) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) i++;
            else if (lone[0]++ == 0) { lone[1] = line; lone[2] = i + 1; }
        }
        sink.document(s);
    }

    /** UTF-8 lines of a byte stream, decoded one at a time so a bad byte costs one warning, not the file. */
    private static final class Lines implements AutoCloseable {
        private final InputStream in;
        private final Path file;
        private final Sink sink;
        private final int[] badLines;
        private final CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        private final byte[] chunk = new byte[1 << 20];
        private int pos, lim;
        private byte[] buf = new byte[1 << 16];
        long number;

        Lines(InputStream in, Path file, Sink sink, int[] badLines) {
            this.in = in;
            this.file = file;
            this.sink = sink;
            this.badLines = badLines;
        }

        String next() throws IOException {
            int len = 0, c = -1;
            while (true) { // copy bytes up to the next '\n' from the chunk, refilling it as needed
                if (pos == lim) {
                    lim = in.read(chunk);
                    pos = 0;
                    if (lim <= 0) { lim = 0; c = -1; break; }
                }
                int end = pos;
                while (end < lim && chunk[end] != '\n') end++;
                int n = end - pos;
                if (len + n > buf.length) buf = java.util.Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
                System.arraycopy(chunk, pos, buf, len, n);
                len += n;
                pos = end;
                if (end < lim) { pos++; c = '\n'; break; }
            }
            if (c < 0 && len == 0) return null;
            number++;
            sink.bytesRead(len + (c < 0 ? 0 : 1));
            if (len > 0 && buf[len - 1] == '\r') len--;
            int start = number == 1 && len >= 3 && (buf[0] & 0xFF) == 0xEF && (buf[1] & 0xFF) == 0xBB && (buf[2] & 0xFF) == 0xBF ? 3 : 0; // BOM
            try {
                return strict.decode(ByteBuffer.wrap(buf, start, len - start)).toString();
            } catch (CharacterCodingException e) {
                if (badLines[0]++ == 0) sink.warning(file + ":" + number + ": invalid UTF-8, bad bytes replaced with U+FFFD");
                return new String(buf, start, len - start, StandardCharsets.UTF_8);
            }
        }

        @Override public void close() throws IOException { in.close(); }
    }
}
