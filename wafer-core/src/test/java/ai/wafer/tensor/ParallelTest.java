package ai.wafer.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicIntegerArray;

import org.junit.jupiter.api.Test;

class ParallelTest {
    @Test
    void coversEveryIndexExactlyOnce() {
        for (int n : new int[] {1, 2, 3, 7, 1000, 100_003}) {
            AtomicIntegerArray hits = new AtomicIntegerArray(n);
            Parallel.forRange(n, (w, from, to) -> {
                assertTrue(w >= 0 && w < Parallel.threads());
                for (int i = from; i < to; i++) hits.incrementAndGet(i);
            });
            for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "n=" + n + " index " + i);
        }
        Parallel.forRange(0, (w, from, to) -> { throw new AssertionError("empty range must not run"); });
    }

    @Test
    void exceptionsPropagateAndTeamSurvives() {
        IllegalStateException boom = new IllegalStateException("boom");
        // throw from the last chunk, which runs on a worker thread when there are several
        RuntimeException got = assertThrows(RuntimeException.class, () -> Parallel.forRange(64, (w, from, to) -> {
            if (to == 64) throw boom;
        }));
        assertSame(boom, got);
        // the caller's own chunk throws at once while the workers are parked (as after a oneDNN call): the loop must
        // still wait for them, or a late worker finds the body gone and its error surfaces in the next loop
        IllegalArgumentException early = new IllegalArgumentException("caller chunk"); // made in advance: thrown at once
        for (int round = 0; round < 50; round++) {
            Parallel.releaseCores();
            try { Thread.sleep(1); } catch (InterruptedException e) { throw new AssertionError(e); }
            AtomicIntegerArray others = new AtomicIntegerArray(1);
            assertSame(early, assertThrows(IllegalArgumentException.class, () -> Parallel.forRange(64, (w, from, to) -> {
                if (from == 0) throw early;
                others.addAndGet(0, to - from);
            })));
            assertEquals(Parallel.threads() == 1 ? 0 : 64 - 64 / Parallel.threads(), others.get(0),
                    "round " + round + ": the other chunks ran before the loop returned");
        }
        // the team still works afterwards
        AtomicIntegerArray hits = new AtomicIntegerArray(64);
        Parallel.forRange(64, (w, from, to) -> { for (int i = from; i < to; i++) hits.incrementAndGet(i); });
        for (int i = 0; i < 64; i++) assertEquals(1, hits.get(i));
    }

    @Test
    void nestedCallRunsSeriallyOnTheCallingThread() {
        int outer = Math.max(2, Parallel.threads());
        AtomicIntegerArray hits = new AtomicIntegerArray(outer * 10);
        Parallel.forRange(outer, (w, from, to) -> {
            for (int o = from; o < to; o++) {
                final int base = o * 10;
                Thread me = Thread.currentThread();
                Parallel.forRange(10, (w2, f2, t2) -> {
                    assertSame(me, Thread.currentThread());
                    assertEquals(0, f2);
                    assertEquals(10, t2);
                    for (int i = f2; i < t2; i++) hits.incrementAndGet(base + i);
                });
            }
        });
        for (int i = 0; i < outer * 10; i++) assertEquals(1, hits.get(i));
    }

    @Test
    void gemmSerialInsideParallelLoop() {
        // per-head matmuls: each worker runs its own serial GEMM on disjoint outputs
        int heads = 6, n = 64, d = 32;
        float[] q = new float[heads * n * d], k = new float[heads * n * d], att = new float[heads * n * n];
        for (int i = 0; i < q.length; i++) { q[i] = (i % 13) * 0.1f; k[i] = (i % 7) * 0.2f; }
        Parallel.forRange(heads, (w, from, to) -> {
            for (int h = from; h < to; h++) {
                Gemm.sgemmSerial(false, true, n, n, d, 1f, q, h * n * d, d, k, h * n * d, d, 0f, att, h * n * n, n);
            }
        });
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < n; i += 7) {
                for (int j = 0; j < n; j += 5) {
                    double s = 0;
                    for (int x = 0; x < d; x++) s += (double) q[h * n * d + i * d + x] * k[h * n * d + j * d + x];
                    assertEquals(s, att[h * n * n + i * n + j], 1e-4 * Math.abs(s) + 1e-5);
                }
            }
        }
    }
}
