package ai.wafer.eval;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ConfusionMatrixTest {
    @Test void countsGoldRowsAgainstPredictedColumns() {
        ConfusionMatrix m = ConfusionMatrix.of(ClassificationReportTest.GOLD, ClassificationReportTest.PRED);
        assertEquals(List.of("A", "B", "C", "D", "E"), m.labels());
        // gold A: A,A,B; gold B: B,A; gold C: C,C,E,B; gold D: C
        long[][] expected = {
                {2, 1, 0, 0, 0},
                {1, 1, 0, 0, 0},
                {0, 1, 2, 0, 1},
                {0, 0, 1, 0, 0},
                {0, 0, 0, 0, 0}};
        assertArrayEquals(expected, m.counts());
        assertEquals(1, m.count("C", "E"));
    }

    @Test void textIsAligned() {
        ConfusionMatrix m = ConfusionMatrix.of(List.of("cat", "cat", "dog"), List.of("cat", "dog", "dog"), List.of("cat", "dog"));
        String expected = """
                gold\\pred  cat  dog
                      cat    1    1
                      dog    0    1
                """;
        assertEquals(expected, m.toText());
    }

    @Test void pairsOutsideTheLabelListAreNotCounted() {
        ConfusionMatrix m = ConfusionMatrix.of(List.of("A", "O", "A"), List.of("O", "A", "A"), List.of("A"));
        assertArrayEquals(new long[][] {{1}}, m.counts());
    }
}
