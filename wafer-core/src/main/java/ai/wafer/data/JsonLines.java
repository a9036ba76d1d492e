package ai.wafer.data;

import ai.wafer.WaferException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Small line-per-record files (JSONL, CoNLL): read whole, every error naming the file (and "file:line"). */
public final class JsonLines {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonLines() {}

    /** The file's lines (ended by \\n, \\r\\n or \\r), strictly UTF-8. */
    public static List<String> lines(Path file) { return text(file).lines().toList(); }

    /** The file's text, decoded strictly: a byte that is not UTF-8 (a Latin-1 file, say) is an error naming its line. */
    public static String text(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
        }
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never has more chars than bytes
        CoderResult r = utf8.decode(in, out, true);
        if (!r.isError()) r = utf8.flush(out);
        if (r.isError()) {
            int at = in.position(), line = 1, start = 0;
            for (int i = 0; i < at; i++) if (bytes[i] == '\n') { line++; start = i + 1; }
            throw new WaferException(String.format("%s:%d: invalid UTF-8 (byte 0x%02X at byte %d of the line); the file must be "
                    + "UTF-8 (from Latin-1: iconv -f latin1 -t utf-8)", file, line, bytes[at] & 0xFF, at - start + 1));
        }
        return out.flip().toString();
    }

    /** One line's JSON value; {@code where} ("file:line") prefixes the error. */
    public static JsonNode parse(String line, String where) {
        try {
            return JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new WaferException(where + ": not valid JSON: " + e.getOriginalMessage());
        }
    }
}
