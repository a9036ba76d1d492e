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
 * commas, doubled quotes and newlines). {@link Columns} names other fields, and a second text for sentence
 * pairs. A label may be a string or a number, kept as a string, or a list of them (multi-label): a JSON array in
 * JSONL, a cell holding a JSON array in CSV.
 */
public final class TextClassificationReader {
    /** The fields to read: the text, the second text of a pair (null: none) and the label. */
    public record Columns(String text, String pair, String label) {
        public static final Columns DEFAULT = new Columns("text", null, "label");
    }

    /**
     * One example; {@code pair} is null without a pair column; {@code labels} holds the one label, or the list's
     * items when {@code isList}; {@code where} is "file:line".
     */
    public record LabeledText(String text, String pair, List<String> labels, boolean isList, String where) {
        public LabeledText(String text, String label, String where) { this(text, null, List.of(label), false, where); }

        public String label() { return labels.getFirst(); }
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    private TextClassificationReader() {}

    public static List<LabeledText> read(Path file) { return read(file, Columns.DEFAULT); }

    /** Reads by extension: {@code .csv} as CSV, anything else as JSONL. */
    public static List<LabeledText> read(Path file, Columns cols) {
        String name = file.getFileName().toString().toLowerCase();
        try {
            List<LabeledText> out = name.endsWith(".csv") ? readCsv(file, cols) : readJsonl(file, cols);
            if (out.isEmpty()) throw new WaferException(file + ": no examples");
            return out;
        } catch (IOException e) {
            throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    public static LabelSet labels(List<LabeledText> examples) {
        Set<String> s = new LinkedHashSet<>();
        for (LabeledText e : examples) s.addAll(e.labels());
        return new LabelSet(s);
    }

    private static List<LabeledText> readJsonl(Path file, Columns cols) {
        List<LabeledText> out = new ArrayList<>();
        List<String> lines = JsonLines.lines(file);
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) continue;
            String where = file + ":" + (i + 1);
            JsonNode o = JsonLines.parse(lines.get(i), where);
            out.add(new LabeledText(text(o, cols.text(), where), cols.pair() == null ? null : text(o, cols.pair(), where),
                    labels(o.path(cols.label()), cols.label(), where), o.path(cols.label()).isArray(), where));
        }
        return out;
    }

    private static String text(JsonNode o, String field, String where) {
        JsonNode t = o.path(field);
        if (!t.isTextual()) throw new WaferException(where + ": missing string field \"" + field + "\"");
        return t.asText();
    }

    /** A label (string, number or boolean) or a list of them, as strings. */
    private static List<String> labels(JsonNode label, String field, String where) {
        List<String> out = new ArrayList<>();
        for (JsonNode l : label.isArray() ? label : List.of(label)) {
            if (!l.isTextual() && !l.isNumber() && !l.isBoolean())
                throw new WaferException(where + ": missing field \"" + field + "\" (a string or number, or a list of them)");
            out.add(l.asText());
        }
        return out;
    }

    private static List<LabeledText> readCsv(Path file, Columns cols) throws IOException {
        List<LabeledText> out = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new java.io.StringReader(JsonLines.text(file)))) {
            Csv csv = new Csv(in, file);
            List<String> header = csv.row();
            if (header == null) throw new WaferException(file + ": empty CSV file");
            if (!header.isEmpty() && header.getFirst().startsWith("\uFEFF")) header.set(0, header.getFirst().substring(1));
            int ti = header.indexOf(cols.text()), li = header.indexOf(cols.label()), pi = cols.pair() == null ? -1 : header.indexOf(cols.pair());
            for (String c : java.util.Arrays.asList(cols.text(), cols.pair(), cols.label()))
                if (c != null && !header.contains(c)) throw new WaferException(file + ":1: no column \"" + c + "\" in the header " + header);
            List<String> row;
            while (true) {
                int line = csv.line + 1;
                if ((row = csv.row()) == null) break;
                if (row.size() == 1 && row.getFirst().isEmpty()) continue; // blank line
                if (row.size() != header.size())
                    throw new WaferException(file + ":" + line + ": " + row.size() + " fields, the header has " + header.size());
                String where = file + ":" + line, cell = row.get(li);
                boolean list = cell.startsWith("["); // a multi-label cell: a JSON array
                List<String> labels;
                try { labels = list ? labels(JSON.readTree(cell), cols.label(), where) : List.of(cell); }
                catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new WaferException(where + ": column \"" + cols.label() + "\" starts with [ but is not a JSON array: " + cell);
                }
                out.add(new LabeledText(row.get(ti), pi < 0 ? null : row.get(pi), labels, list, where));
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
