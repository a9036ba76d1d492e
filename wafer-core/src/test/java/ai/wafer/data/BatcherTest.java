package ai.wafer.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class BatcherTest {
    static Example ex(int n, int label) {
        int[] ids = new int[n], labels = new int[n];
        for (int i = 0; i < n; i++) { ids[i] = 1000 + i; labels[i] = i % 2 == 0 ? 7 : Example.IGNORE; }
        return new Example(ids, labels, label);
    }

    @Test void padsMasksAndTruncates() {
        List<Example> xs = List.of(ex(3, -1), ex(6, -1), ex(2, -1));
        Batcher.Batch b = new Batcher(3, 5, 50256).batch(xs, new int[] {0, 1, 2});
        assertEquals(3, b.size());
        assertEquals(5, b.length()); // the longest is cut to 5
        assertArrayEquals(new int[] {1000, 1001, 1002, 50256, 50256}, java.util.Arrays.copyOfRange(b.ids(), 0, 5));
        assertArrayEquals(new int[] {1, 1, 1, 0, 0}, java.util.Arrays.copyOfRange(b.mask(), 0, 5));
        assertArrayEquals(new int[] {7, -100, 7, -100, -100}, java.util.Arrays.copyOfRange(b.labels(), 0, 5));
        assertArrayEquals(new int[] {1, 1, 1, 1, 1}, java.util.Arrays.copyOfRange(b.mask(), 5, 10));
        assertArrayEquals(new int[] {3, 5, 2}, b.lengths());
        assertNull(b.classes());
        Batcher.Batch c = new Batcher(2, 8, 0).batch(List.of(new Example(new int[] {5}, null, 1), new Example(new int[] {6, 7}, null, 0)), new int[] {0, 1});
        assertArrayEquals(new int[] {1, 0}, c.classes());
        assertNull(c.labels());
    }

    @Test void padsOnTheLeft() {
        List<Example> xs = List.of(ex(3, -1), ex(6, -1), ex(2, -1));
        Batcher.Batch b = new Batcher(3, 5, 50256, Batcher.Side.LEFT).batch(xs, new int[] {0, 1, 2});
        assertArrayEquals(new int[] {50256, 50256, 1000, 1001, 1002}, java.util.Arrays.copyOfRange(b.ids(), 0, 5));
        assertArrayEquals(new int[] {0, 0, 1, 1, 1}, java.util.Arrays.copyOfRange(b.mask(), 0, 5));
        assertArrayEquals(new int[] {-100, -100, 7, -100, 7}, java.util.Arrays.copyOfRange(b.labels(), 0, 5));
        assertArrayEquals(new int[] {1000, 1001, 1002, 1003, 1004}, java.util.Arrays.copyOfRange(b.ids(), 5, 10)); // cut, not padded
        assertArrayEquals(new int[] {2, 0, 3}, b.starts());
        assertEquals(4, b.last(0));
        assertEquals(4, b.last(2));
        Batcher.Batch r = new Batcher(3, 5, 50256).batch(xs, new int[] {0, 1, 2});
        assertArrayEquals(new int[] {0, 0, 0}, r.starts());
        assertEquals(2, r.last(0));
    }

    @Test void bucketingCoversEveryExampleOnceAndWastesLittle() {
        Random r = new Random(1);
        List<Example> xs = new ArrayList<>();
        for (int i = 0; i < 1000; i++) xs.add(ex(1 + r.nextInt(200), -1));
        Batcher batcher = new Batcher(16, 128, 0);
        for (boolean shuffle : new boolean[] {false, true}) {
            List<Batcher.Batch> bs = batcher.batches(xs, shuffle, 42);
            Set<Integer> seen = new HashSet<>();
            long real = 0, total = 0;
            for (Batcher.Batch b : bs) {
                for (int i : b.examples()) assertTrue(seen.add(i));
                for (int l : b.lengths()) real += l;
                total += (long) b.size() * b.length();
            }
            assertEquals(1000, seen.size());
            assertTrue(real > 0.9 * total, "fill " + (double) real / total + " shuffle=" + shuffle);
        }
        assertEquals(batcher.batches(xs, true, 42).getFirst().examples()[0], batcher.batches(xs, true, 42).getFirst().examples()[0]);
    }
}
