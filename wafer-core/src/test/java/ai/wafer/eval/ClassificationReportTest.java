package ai.wafer.eval;

import ai.wafer.WaferException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ClassificationReportTest {
    // item:  0  1  2  3  4  5  6  7  8  9
    static final List<String> GOLD = List.of("A", "A", "A", "B", "B", "C", "C", "C", "C", "D");
    static final List<String> PRED = List.of("A", "A", "B", "B", "A", "C", "C", "E", "B", "C");
    // per label (tp, fp, fn):
    //   A: tp 0,1; fp 4; fn 2          -> (2,1,1): P 2/3, R 2/3, F1 4/6 = 0.6667, support 3
    //   B: tp 3; fp 2,8; fn 4          -> (1,2,1): P 1/3, R 1/2, F1 2/5 = 0.4,    support 2
    //   C: tp 5,6; fp 9; fn 7,8        -> (2,1,2): P 2/3, R 2/4, F1 4/7 = 0.5714, support 4
    //   D: never predicted; fn 9       -> (0,0,1): P 0 (no division error), R 0, F1 0, support 1
    //   E: never in gold; fp 7         -> (0,1,0): P 0, R 0 (no division error), F1 0, support 0
    // accuracy = 5 correct / 10 = 0.5
    // micro: tp 5, fp 5, fn 5        -> P = R = F1 = 0.5
    // macro: P (2/3+1/3+2/3)/5 = 1/3; R (2/3+1/2+1/2)/5 = 1/3; F1 (2/3+2/5+4/7)/5 = 0.327619
    // weighted (by support 3,2,4,1,0 / 10):
    //   P (2/3*3 + 1/3*2 + 2/3*4)/10 = 0.53333; R (2 + 1 + 2)/10 = 0.5; F1 (2 + 0.8 + 16/7)/10 = 0.508571
    static final double EPS = 1e-12;

    @Test void perLabelAndAverageScores() {
        ClassificationReport r = ClassificationReport.of(GOLD, PRED);
        PrfTable t = r.table();
        assertEquals(List.of("A", "B", "C", "D", "E"), t.rows().stream().map(PrfTable.Row::name).toList());
        assertRow(t.row("A"), 2 / 3.0, 2 / 3.0, 2 / 3.0, 3);
        assertRow(t.row("B"), 1 / 3.0, 0.5, 0.4, 2);
        assertRow(t.row("C"), 2 / 3.0, 0.5, 4 / 7.0, 4);
        assertRow(t.row("D"), 0, 0, 0, 1);
        assertRow(t.row("E"), 0, 0, 0, 0);
        assertEquals(0.5, r.accuracy(), EPS);
        assertRow(t.micro(), 0.5, 0.5, 0.5, 10);
        assertRow(t.macro(), 1 / 3.0, 1 / 3.0, (2 / 3.0 + 0.4 + 4 / 7.0) / 5, 10);
        assertRow(t.weighted(), (2 + 2 / 3.0 + 8 / 3.0) / 10, 0.5, (2 + 0.8 + 16 / 7.0) / 10, 10);
    }

    @Test void multiLabelCountsEachLabelOfEachItem() {
        // gold {a,b} {b} {} {a,c}; predicted {a} {b,c} {} {a,c}
        //   a: tp items 0,3                  -> P 1, R 1, F1 1, support 2
        //   b: tp item 1, fn item 0          -> P 1, R 1/2, F1 2/3, support 2
        //   c: tp item 3, fp item 1          -> P 1/2, R 1, F1 2/3, support 1
        // accuracy (exact set, sklearn's subset accuracy): items 2 and 3 -> 0.5; micro: tp 4, fp 1, fn 1 -> 0.8
        ClassificationReport r = ClassificationReport.multiLabel(
                List.of(List.of("a", "b"), List.of("b"), List.of(), List.of("a", "c")),
                List.of(List.of("a"), List.of("b", "c"), List.of(), List.of("c", "a")));
        PrfTable t = r.table();
        assertRow(t.row("a"), 1, 1, 1, 2);
        assertRow(t.row("b"), 1, 0.5, 2 / 3.0, 2);
        assertRow(t.row("c"), 0.5, 1, 2 / 3.0, 1);
        assertEquals(0.5, r.accuracy(), EPS);
        assertRow(t.micro(), 0.8, 0.8, 0.8, 5);
        assertRow(t.macro(), 2.5 / 3, 2.5 / 3, (1 + 4 / 3.0) / 3, 5);
    }

    @Test void textMatchesSklearnLayout() {
        String expected = """
                              precision    recall  f1-score   support

                           A       0.67      0.67      0.67         3
                           B       0.33      0.50      0.40         2
                           C       0.67      0.50      0.57         4
                           D       0.00      0.00      0.00         1
                           E       0.00      0.00      0.00         0

                    accuracy                           0.50        10
                   micro avg       0.50      0.50      0.50        10
                   macro avg       0.33      0.33      0.33        10
                weighted avg       0.53      0.50      0.51        10
                """;
        assertEquals(expected, ClassificationReport.of(GOLD, PRED).toText());
    }

    @Test void digitsAreConfigurable() {
        String expected = """
                              precision    recall  f1-score   support

                           A     0.6667    0.6667    0.6667         3
                           B     0.3333    0.5000    0.4000         2
                           C     0.6667    0.5000    0.5714         4
                           D     0.0000    0.0000    0.0000         1
                           E     0.0000    0.0000    0.0000         0

                    accuracy                         0.5000        10
                   micro avg     0.5000    0.5000    0.5000        10
                   macro avg     0.3333    0.3333    0.3276        10
                weighted avg     0.5333    0.5000    0.5086        10
                """;
        assertEquals(expected, ClassificationReport.of(GOLD, PRED).toText(4));
    }

    @Test void longLabelsWidenTheFirstColumn() {
        ClassificationReport r = ClassificationReport.of(List.of("a-very-long-label", "x"), List.of("a-very-long-label", "x"));
        String[] lines = r.toText().split("\n");
        assertEquals(" ".repeat(17) + "  precision    recall  f1-score   support", lines[0]);
        assertEquals("a-very-long-label       1.00      1.00      1.00         1", lines[2]);
        assertEquals(" ".repeat(16) + "x       1.00      1.00      1.00         1", lines[3]);
    }

    @Test void roundingIsPythonsHalfEvenOnTheExactBinaryValue() {
        assertEquals("0.12", PrfTable.fixed(0.125, 2));  // exactly representable tie: to even (Java's %.2f says 0.13)
        assertEquals("0.68", PrfTable.fixed(0.675, 2));  // 0.67500000000000004441 is above the tie
        assertEquals("0.83", PrfTable.fixed(2.5 / 3, 2));
        assertEquals("0", PrfTable.fixed(0.5, 0));      // digits 0: Python's format(0.5, '.0f') is '0'
        assertEquals("2", PrfTable.fixed(1.5, 0));
    }

    @Test void excludingALabelScoresOnlyTheRest() {
        // A plays the role of "O": B..E remain. micro over them: tp 1+2 = 3, fp 2+1+0+1 = 4, fn 1+2+1+0 = 4
        //   -> P = R = F1 = 3/7. Accuracy still counts all 10 items.
        ClassificationReport r = ClassificationReport.excluding(GOLD, PRED, List.of("A"));
        assertEquals(List.of("B", "C", "D", "E"), r.table().rows().stream().map(PrfTable.Row::name).toList());
        assertRow(r.table().micro(), 3 / 7.0, 3 / 7.0, 3 / 7.0, 7);
        assertRow(r.table().macro(), 0.25, 0.25, (0.4 + 4 / 7.0) / 4, 7);
        assertEquals(0.5, r.accuracy(), EPS);
        assertNull(r.table().row("A"));
    }

    @Test void explicitLabelListKeepsOrderAndZeroRowsForAbsentLabels() {
        ClassificationReport r = ClassificationReport.of(GOLD, PRED, List.of("C", "Z", "A"));
        assertEquals(List.of("C", "Z", "A"), r.table().rows().stream().map(PrfTable.Row::name).toList());
        assertRow(r.table().row("Z"), 0, 0, 0, 0);
        assertRow(r.table().row("C"), 2 / 3.0, 0.5, 4 / 7.0, 4);
    }

    @Test void jsonHasSklearnDictShape() {
        Map<String, Object> m = ClassificationReport.of(GOLD, PRED).toMap();
        assertEquals(List.of("A", "B", "C", "D", "E", "accuracy", "micro avg", "macro avg", "weighted avg"),
                List.copyOf(m.keySet()));
        @SuppressWarnings("unchecked") Map<String, Object> b = (Map<String, Object>) m.get("B");
        assertEquals(0.4, (Double) b.get("f1-score"), EPS);
        assertEquals(2L, b.get("support"));
        assertEquals(0.5, m.get("accuracy"));
        assertTrue(ClassificationReport.of(GOLD, PRED).toJson().contains("\"weighted avg\""));
    }

    @Test void lengthMismatchIsAUserError() {
        assertThrows(WaferException.class, () -> ClassificationReport.of(List.of("A"), List.of("A", "B")));
    }

    static void assertRow(PrfTable.Row r, double p, double rec, double f1, long support) {
        assertNotNull(r);
        assertEquals(p, r.precision(), EPS, r.name() + " precision");
        assertEquals(rec, r.recall(), EPS, r.name() + " recall");
        assertEquals(f1, r.f1(), EPS, r.name() + " f1");
        assertEquals(support, r.support(), r.name() + " support");
    }
}
