package ai.wafer.data;

import ai.wafer.WaferException;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Sequence-classification data: JSONL ({@code {"text": ..., "label": ...}} a line; other fields ignored) or
 * CSV with a header row naming a {@code text} and a {@code label} column (RFC 4180: quoted fields may hold
 * commas, doubled quotes and newlines). Labels may be strings or numbers; they are kept as strings.
 */
public final class TextClassificationReader {
    /** One example; {@code where} is "file:line". */
    public record LabeledText(String text, String label, String where) {}

    private TextClassificationReader() {}

    /** Reads by extension: {@code .csv} as CSV, anything else as JSONL. */
    public static List<LabeledText> read(Path file) {
        String name = file.getFileName().toString().toLowerCase();
        try {
            List<LabeledText> out = name.endsWith(".csv") ? readCsv(file) : readJsonl(file);
            if (out.isEmpty()) throw new WaferException(file + ": no examples");
            return out;
        } catch (IOException e) {
            throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    public static LabelSet labels(List<LabeledText> examples) {
        Set<String> s = new LinkedHashSet<>();
        for (LabeledText e : examples) s.add(e.label());
        return new LabelSet(s);
    }

    private static List<LabeledText> readJsonl(Path file) {
        List<LabeledText> out = new ArrayList<>();
        List<String> lines = JsonLines.lines(file);
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) continue;
            String where = file + ":" + (i + 1);
            JsonNode o = JsonLines.parse(lines.get(i), where);
            JsonNode text = o.path("text"), label = o.path("label");
            if (!text.isTextual()) throw new WaferException(where + ": missing string field \"text\"");
            if (!label.isTextual() && !label.isNumber() && !label.isBoolean())
                throw new WaferException(where + ": missing field \"label\" (a string or number)");
            out.add(new LabeledText(text.asText(), label.asText(), where));
        }
        return out;
    }

    private static List<LabeledText> readCsv(Path file) throws IOException {
        List<LabeledText> out = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new java.io.StringReader(JsonLines.text(file)))) {
            Csv csv = new Csv(in, file);
            List<String> header = csv.row();
            if (header == null) throw new WaferException(file + ": empty CSV file");
            if (!header.isEmpty() && header.getFirst().startsWith("\uFEFF")) header.set(0, header.getFirst().substring(1));
            int ti = header.indexOf("text"), li = header.indexOf("label");
            if (ti < 0 || li < 0) throw new WaferException(file + ":1: the header needs columns \"text\" and \"label\", has " + header);
            List<String> row;
            while (true) {
                int line = csv.line + 1;
                if ((row = csv.row()) == null) break;
                if (row.size() == 1 && row.getFirst().isEmpty()) continue; // blank line
                if (row.size() != header.size())
                    throw new WaferException(file + ":" + line + ": " + row.size() + " fields, the header has " + header.size());
                out.add(new LabeledText(row.get(ti), row.get(li), file + ":" + line));
            }
        }
        return out;
    }

    /** A minimal RFC 4180 parser: one row per call, quoted fields may span lines. */
    private static final class Csv {
        private final BufferedReader in;
        private final Path file;
        int line;

        Csv(BufferedReader in, Path file) { this.in = in; this.file = file; }

        List<String> row() throws IOException {
            String l = in.readLine();
            if (l == null) return null;
            line++;
            List<String> fields = new ArrayList<>();
            StringBuilder f = new StringBuilder();
            boolean quoted = false;
            int i = 0;
            while (true) {
                if (i == l.length()) {
                    if (!quoted) break;
                    String next = in.readLine(); // a newline inside quotes belongs to the field
                    if (next == null) throw new WaferException(file + ":" + line + ": quoted field not closed before the end of the file");
                    line++;
                    f.append('\n');
                    l = next;
                    i = 0;
                    continue;
                }
                char c = l.charAt(i++);
                if (quoted) {
                    if (c != '"') f.append(c);
                    else if (i < l.length() && l.charAt(i) == '"') { f.append('"'); i++; }
                    else quoted = false;
                } else if (c == '"') quoted = true;
                else if (c == ',') { fields.add(f.toString()); f.setLength(0); }
                else f.append(c);
            }
            fields.add(f.toString());
            return fields;
        }
    }
}
