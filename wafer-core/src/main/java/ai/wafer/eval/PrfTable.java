package ai.wafer.eval;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Precision, recall, F1 and support per label from true-positive / false-positive / false-negative counts,
 * with micro, macro and support-weighted averages; rendered in scikit-learn's {@code classification_report}
 * text layout. Shared by token-level ({@link ClassificationReport}) and entity-level ({@link EntityReport}) scores.
 * A ratio with a zero denominator (a label never predicted, never in gold) is 0.0, as sklearn's default.
 */
public final class PrfTable {
    /** One line of the report; {@code support} is the number of gold occurrences. */
    public record Row(String name, double precision, double recall, double f1, long support) {}

    public static final String MICRO = "micro avg", MACRO = "macro avg", WEIGHTED = "weighted avg";

    private final List<Row> rows;
    private final Row micro, macro, weighted;

    private PrfTable(List<Row> rows, Row micro, Row macro, Row weighted) {
        this.rows = rows;
        this.micro = micro;
        this.macro = macro;
        this.weighted = weighted;
    }

    /** Builds the table; arrays are indexed like {@code labels}. */
    public static PrfTable fromCounts(List<String> labels, long[] tp, long[] fp, long[] fn) {
        int n = labels.size();
        List<Row> rows = new ArrayList<>(n);
        long sumTp = 0, sumFp = 0, sumFn = 0, sumSupport = 0;
        double mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0;
        for (int i = 0; i < n; i++) {
            Row r = row(labels.get(i), tp[i], fp[i], fn[i]);
            rows.add(r);
            sumTp += tp[i];
            sumFp += fp[i];
            sumFn += fn[i];
            sumSupport += r.support();
            mp += r.precision();
            mr += r.recall();
            mf += r.f1();
            wp += r.precision() * r.support();
            wr += r.recall() * r.support();
            wf += r.f1() * r.support();
        }
        Row micro = row(MICRO, sumTp, sumFp, sumFn);
        Row macro = n == 0 ? new Row(MACRO, 0, 0, 0, 0) : new Row(MACRO, mp / n, mr / n, mf / n, sumSupport);
        Row weighted = sumSupport == 0 ? new Row(WEIGHTED, 0, 0, 0, 0)
                : new Row(WEIGHTED, wp / sumSupport, wr / sumSupport, wf / sumSupport, sumSupport);
        return new PrfTable(Collections.unmodifiableList(rows), micro, macro, weighted);
    }

    private static Row row(String name, long tp, long fp, long fn) {
        // F1 as 2tp / (2tp + fp + fn): equal to the harmonic mean of P and R, and defined (0) when P = R = 0
        return new Row(name, ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn), tp + fn);
    }

    private static double ratio(long num, long den) { return den == 0 ? 0.0 : (double) num / den; }

    public List<Row> rows() { return rows; }
    public Row micro() { return micro; }
    public Row macro() { return macro; }
    public Row weighted() { return weighted; }

    /** The row of one label, or null. */
    public Row row(String label) {
        for (Row r : rows) if (r.name().equals(label)) return r;
        return null;
    }

    /**
     * The sklearn text layout: a header, one row per label, a blank line, then (when {@code accuracy} is
     * given) the accuracy row, and the micro, macro and weighted average rows. Numbers are rounded half-even
     * on their exact binary value, as Python's {@code format} does, so the text matches sklearn digit for digit.
     */
    public String format(int digits, Double accuracy, long accuracySupport) {
        if (digits < 0) throw new IllegalArgumentException("digits must be >= 0, got " + digits);
        int width = Math.max(WEIGHTED.length(), digits);
        for (Row r : rows) width = Math.max(width, r.name().length());
        StringBuilder sb = new StringBuilder();
        sb.append(pad("", width)).append(' ');
        for (String h : new String[] {"precision", "recall", "f1-score", "support"}) sb.append(' ').append(pad(h, 9));
        sb.append("\n\n");
        for (Row r : rows) appendRow(sb, r, width, digits);
        sb.append('\n');
        if (accuracy != null) {
            sb.append(pad("accuracy", width)).append(' ')
                    .append(' ').append(pad("", 9)).append(' ').append(pad("", 9))
                    .append(' ').append(pad(fixed(accuracy, digits), 9))
                    .append(' ').append(pad(Long.toString(accuracySupport), 9)).append('\n');
        }
        appendRow(sb, micro, width, digits);
        appendRow(sb, macro, width, digits);
        appendRow(sb, weighted, width, digits);
        return sb.toString();
    }

    private static void appendRow(StringBuilder sb, Row r, int width, int digits) {
        sb.append(pad(r.name(), width)).append(' ')
                .append(' ').append(pad(fixed(r.precision(), digits), 9))
                .append(' ').append(pad(fixed(r.recall(), digits), 9))
                .append(' ').append(pad(fixed(r.f1(), digits), 9))
                .append(' ').append(pad(Long.toString(r.support()), 9)).append('\n');
    }

    /** Python's {@code format(x, '.{digits}f')}: exact binary value, ties to even. */
    static String fixed(double x, int digits) {
        return new BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
    }

    static String pad(String s, int width) {
        return s.length() >= width ? s : " ".repeat(width - s.length()) + s;
    }

    /**
     * sklearn's {@code output_dict} shape: label to {precision, recall, f1-score, support}, then
     * "accuracy" (when given), "micro avg", "macro avg", "weighted avg". Values are not rounded.
     */
    public Map<String, Object> toMap(Double accuracy) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (Row r : rows) m.put(r.name(), rowMap(r));
        if (accuracy != null) m.put("accuracy", accuracy);
        m.put(MICRO, rowMap(micro));
        m.put(MACRO, rowMap(macro));
        m.put(WEIGHTED, rowMap(weighted));
        return m;
    }

    private static Map<String, Object> rowMap(Row r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("precision", r.precision());
        m.put("recall", r.recall());
        m.put("f1-score", r.f1());
        m.put("support", r.support());
        return m;
    }
}
