package ai.wafer.eval;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one rule for "entity spans mean something here", used by wafer evaluate and the /v1/tag endpoint. */
class TaggingTest {
    @Test void entityTaggings() {
        assertTrue(Tagging.isEntityTagging(List.of("O", "B-PER", "I-PER", "B-LOC")));
        assertTrue(Tagging.isEntityTagging(List.of("O", "B-LOC", "I-LOC", "E-LOC", "S-MISC")));
        assertTrue(Tagging.isEntityTagging(List.of("I-ORG", "I-ORG"))); // IOB1, no O at all
    }

    @Test void notEntityTaggings() {
        assertFalse(Tagging.isEntityTagging(List.of("DET", "NOUN", "VERB"))); // part-of-speech tags
        assertFalse(Tagging.isEntityTagging(List.of("O", "B-PER", "NOUN")));
        assertFalse(Tagging.isEntityTagging(List.<String>of()));
    }

    /**
     * Where the two old checks disagreed: the server's allowed a bare prefix ("[BIES](-.+)?") and an all-O label set;
     * evaluation's needed a type and one entity tag. The stricter rule holds for both now.
     */
    @Test void casesTheOldChecksDisagreedOn() {
        assertFalse(Tagging.isEntityTagging(List.of("O")), "all O: no entity to report");
        assertFalse(Tagging.isEntityTagging(List.of("O", "B", "I")), "bare prefixes: tags of their own, not typeless entities");
        assertFalse(Tagging.isEntityTagging(List.of("B", "E", "S")), "word-segmentation tags");
        assertFalse(Tagging.isEntityTagging(List.of("O", "B-")), "a dash but no type");
    }

    @Test void detectsTheScheme() {
        assertEquals(Tagging.IOB2, Tagging.detect(List.of(List.of("B-PER", "I-PER", "O", "B-LOC"))));
        assertEquals(Tagging.IOB1, Tagging.detect(List.of(List.of("I-PER", "I-PER", "O", "I-LOC"))));
        assertEquals(Tagging.IOBES, Tagging.detect(List.of(List.of("B-PER", "E-PER", "S-LOC"))));
    }
}
