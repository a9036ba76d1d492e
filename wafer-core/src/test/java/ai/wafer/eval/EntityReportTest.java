package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.eval.EntitySpans.Entity;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static ai.wafer.eval.ClassificationReportTest.assertRow;
import static org.junit.jupiter.api.Assertions.*;

class EntityReportTest {
    static List<String> tags(String s) { return Arrays.asList(s.split(" ")); }

    static List<Entity> lenient(String s) { return EntitySpans.lenient(tags(s), 0); }

    static List<Entity> strict(String s, Tagging scheme) { return EntitySpans.strict(tags(s), scheme, 0); }

    static Entity e(String type, int start, int end) { return new Entity(0, type, start, end); }

    @Test void typeMismatchIsAMissAndAFalsePositive() {
        // gold PER[0..1], LOC[3]; pred PER[0..1], ORG[3]
        //   LOC: tp 0 fp 0 fn 1 -> P 0 (never predicted), R 0, F1 0, support 1
        //   ORG: tp 0 fp 1 fn 0 -> 0, 0, 0, support 0
        //   PER: tp 1            -> 1, 1, 1, support 1
        // micro: tp 1, fp 1, fn 1 -> 0.5 / 0.5 / 0.5; macro: 1/3 each; weighted by (1, 0, 1): 0.5 each
        EntityReport r = EntityReport.lenient(List.of(tags("B-PER I-PER O B-LOC")), List.of(tags("B-PER I-PER O B-ORG")));
        assertRow(r.table().row("LOC"), 0, 0, 0, 1);
        assertRow(r.table().row("ORG"), 0, 0, 0, 0);
        assertRow(r.table().row("PER"), 1, 1, 1, 1);
        assertRow(r.table().micro(), 0.5, 0.5, 0.5, 2);
        assertRow(r.table().macro(), 1 / 3.0, 1 / 3.0, 1 / 3.0, 2);
        assertRow(r.table().weighted(), 0.5, 0.5, 0.5, 2);
        String expected = """
                              precision    recall  f1-score   support

                         LOC       0.00      0.00      0.00         1
                         ORG       0.00      0.00      0.00         0
                         PER       1.00      1.00      1.00         1

                   micro avg       0.50      0.50      0.50         2
                   macro avg       0.33      0.33      0.33         2
                weighted avg       0.50      0.50      0.50         2
                """;
        assertEquals(expected, r.toText());
    }

    @Test void aSpanMustMatchExactly() {
        // pred PER[0..0] against gold PER[0..1]: no credit, one false positive and one miss
        EntityReport r = EntityReport.lenient(List.of(tags("B-PER I-PER O")), List.of(tags("B-PER O O")));
        assertRow(r.table().row("PER"), 0, 0, 0, 1);
    }

    @Test void entitiesDoNotCrossSentences() {
        // two sentences, each ending / starting with PER: four separate entities, not two merged ones
        List<List<String>> gold = List.of(tags("O I-PER"), tags("I-PER O"));
        EntityReport r = EntityReport.lenient(gold, gold);
        assertEquals(List.of(new Entity(0, "PER", 1, 1), new Entity(1, "PER", 0, 0)), r.goldEntities());
        assertRow(r.table().micro(), 1, 1, 1, 2);
    }

    @Test void lenientModeChunking() {
        assertEquals(List.of(e("PER", 0, 1)), lenient("I-PER I-PER"));              // I- after O starts an entity
        assertEquals(List.of(e("PER", 0, 0), e("LOC", 1, 1)), lenient("B-PER I-LOC")); // type change splits
        assertEquals(List.of(e("PER", 0, 1), e("PER", 2, 3)), lenient("B-PER I-PER B-PER I-PER"));
        assertEquals(List.of(e("PER", 1, 2)), lenient("O B-PER I-PER O"));
        assertEquals(List.of(), lenient("O O"));
    }

    @Test void iob1() {
        // IOB1: I- is the normal tag; B- separates two adjacent entities of one type
        String s = "I-PER B-PER O I-LOC I-LOC I-ORG";
        List<Entity> expected = List.of(e("PER", 0, 0), e("PER", 1, 1), e("LOC", 3, 4), e("ORG", 5, 5));
        assertEquals(expected, lenient(s));
        assertEquals(expected, strict(s, Tagging.IOB1));
        // a B- that follows nothing of its type is ill-formed in IOB1: its run is dropped in strict mode
        assertEquals(List.of(), strict("O B-PER I-PER", Tagging.IOB1));
        assertEquals(List.of(e("PER", 1, 2)), lenient("O B-PER I-PER"));
    }

    @Test void iobes() {
        String s = "B-PER I-PER E-PER S-LOC S-LOC O B-ORG E-ORG";
        List<Entity> expected = List.of(e("PER", 0, 2), e("LOC", 3, 3), e("LOC", 4, 4), e("ORG", 6, 7));
        assertEquals(expected, lenient(s));
        assertEquals(expected, strict(s, Tagging.IOBES));
        // a span never closed by E- counts in lenient mode only
        assertEquals(List.of(e("PER", 0, 1)), lenient("B-PER I-PER O"));
        assertEquals(List.of(), strict("B-PER I-PER O", Tagging.IOBES));
        // B- interrupted by S-: the unclosed PER is dropped, the S- stands
        assertEquals(List.of(e("LOC", 1, 1)), strict("B-PER S-LOC", Tagging.IOBES));
        assertEquals(List.of(e("PER", 0, 0), e("LOC", 1, 1)), lenient("B-PER S-LOC"));
        // E- of another type does not close PER
        assertEquals(List.of(), strict("B-PER E-LOC", Tagging.IOBES));
    }

    @Test void strictVersusDefaultOnIPerIPer() {
        List<List<String>> gold = List.of(tags("I-PER I-PER"));
        // default: one PER entity on each side, and they match
        assertRow(EntityReport.lenient(gold, gold).table().row("PER"), 1, 1, 1, 1);
        // strict IOB2: an entity must start with B-, so there are none at all
        EntityReport strict = EntityReport.strict(gold, gold, Tagging.IOB2);
        assertEquals(List.of(), strict.goldEntities());
        assertEquals(List.of(), strict.table().rows());
        // strict IOB2 against a well-formed gold: the prediction earns nothing
        EntityReport r = EntityReport.strict(List.of(tags("B-PER I-PER")), gold, Tagging.IOB2);
        assertRow(r.table().row("PER"), 0, 0, 0, 1);
        assertEquals(List.of(e("PER", 0, 1)), strict("B-PER I-PER", Tagging.IOB2));
        assertEquals(List.of(e("PER", 0, 0)), strict("B-PER I-LOC I-LOC", Tagging.IOB2));
    }

    @Test void prefixesOutsideTheSchemeAreErrorsInStrictMode() {
        WaferException e = assertThrows(WaferException.class, () -> strict("B-PER E-PER", Tagging.IOB2));
        assertTrue(e.getMessage().contains("token 1"), e.getMessage());
        assertThrows(WaferException.class, () -> lenient("B-PER X-PER"));
        assertThrows(WaferException.class, () -> lenient("PER"));
    }

    @Test void shapeMismatchIsAUserError() {
        assertThrows(WaferException.class,
                () -> EntityReport.lenient(List.of(tags("O O")), List.of(tags("O"))));
        assertThrows(WaferException.class,
                () -> EntityReport.lenient(List.of(tags("O O")), List.of()));
    }
}
