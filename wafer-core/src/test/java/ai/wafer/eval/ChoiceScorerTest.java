package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChoiceScorerTest {
    @TempDir Path tmp;

    @Test
    void scoresAreTheModelsOwnLogLikelihoods() {
        Tokenizer tok = Tokenizer.load(Fixtures.TOKENIZER);
        Gpt m = Gpt.init(GptConfig.of(2, 32, 2, 50257, 64), 3);
        String ctx = "The jury said", a = " it was fair.", b = " that the city was a mess of an election.";
        // reference: the model's cross-entropy with the context positions ignored (-100)
        double[] ll = new double[2];
        String[] choices = {a, b};
        for (int c = 0; c < 2; c++) {
            int[] x0 = tok.encode(ctx), y0 = tok.encode(choices[c]);
            int n = x0.length + y0.length;
            int[] row = new int[n];
            System.arraycopy(x0, 0, row, 0, x0.length);
            System.arraycopy(y0, 0, row, x0.length, y0.length);
            int[] x = java.util.Arrays.copyOf(row, n - 1), y = new int[n - 1];
            for (int t = 0; t < n - 1; t++) y[t] = t + 1 < x0.length ? -100 : row[t + 1];
            ll[c] = -m.forward(x, y, 1, n - 1) * y0.length;
        }
        // the label is whichever the model prefers by sum (acc) and the other one is checked per byte
        int best = ll[0] > ll[1] ? 0 : 1;
        var r = ChoiceScorer.score(m, tok, List.of(new ChoiceScorer.Item(ctx, List.of(a, b), best, "t")));
        assertEquals(1, r.correct());
        double perByteA = ll[0] / a.length(), perByteB = ll[1] / b.length();
        assertEquals(perByteA > perByteB ? best == 0 : best == 1, r.correctNorm() == 1);
        assertEquals(0, ChoiceScorer.score(m, tok, List.of(new ChoiceScorer.Item(ctx, List.of(a, b), 1 - best, "t"))).correct());
    }

    @Test
    void labelOutOfRangeIsNamed() throws Exception {
        Path f = tmp.resolve("items.jsonl");
        Files.writeString(f, "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"label\": 0}\n{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"label\": 2}\n");
        var e = assertThrows(WaferException.class, () -> ChoiceScorer.read(f));
        assertTrue(e.getMessage().contains("items.jsonl:2") && e.getMessage().contains("label 2 is out of range"), e.getMessage());
    }

    @Test
    void bundledItemsRead() {
        var items = ChoiceScorer.read(Path.of("data/brown/choice-val.jsonl"));
        assertEquals(200, items.size());
        assertTrue(items.stream().allMatch(i -> i.choices().size() == 4));
    }

    @org.junit.jupiter.api.Test
    void fewShotPromptsAreOtherItemsSolvedInFront() {
        java.util.List<ChoiceScorer.Item> items = new java.util.ArrayList<>();
        for (int i = 0; i < 6; i++)
            items.add(new ChoiceScorer.Item("ctx" + i, java.util.List.of(" a" + i, " b" + i), i % 2, "f:" + (i + 1)));
        var shots = ChoiceScorer.withFewShot(items, items, 3, 1234);
        org.junit.jupiter.api.Assertions.assertEquals(shots, ChoiceScorer.withFewShot(items, items, 3, 1234), "a fixed seed repeats");
        for (int i = 0; i < 6; i++) {
            String[] parts = shots.get(i).context().split("\n\n");
            org.junit.jupiter.api.Assertions.assertEquals(4, parts.length, shots.get(i).context());
            org.junit.jupiter.api.Assertions.assertEquals("ctx" + i, parts[3]);
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (int k = 0; k < 3; k++) {
                int j = Integer.parseInt(parts[k].substring(3, 4));
                org.junit.jupiter.api.Assertions.assertNotEquals(i, j, "never its own example");
                org.junit.jupiter.api.Assertions.assertEquals("ctx" + j + (j % 2 == 0 ? " a" : " b") + j, parts[k], "context and its correct choice");
                org.junit.jupiter.api.Assertions.assertTrue(seen.add(parts[k]), "distinct examples");
            }
            org.junit.jupiter.api.Assertions.assertEquals(items.get(i).choices(), shots.get(i).choices());
        }
        org.junit.jupiter.api.Assertions.assertSame(items, ChoiceScorer.withFewShot(items, items, 0, 1));
        org.junit.jupiter.api.Assertions.assertThrows(ai.wafer.WaferException.class, () -> ChoiceScorer.withFewShot(items, items, 6, 1));
    }
}
