package ai.wafer.parallel;

import ai.wafer.WaferException;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ThreadCommunicatorTest {
    private static final Duration T = Duration.ofSeconds(30);

    private static float[] data(int rank, int n) {
        SplittableRandom r = new SplittableRandom(100 + rank);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    @Test void allReduceSumsInRankOrderAndEveryRankGetsTheSameBits() {
        for (int p : new int[]{1, 2, 3, 4}) {
            int n = 1003, off = 5;
            float[] want = new float[n];
            for (int i = 0; i < n; i++) {
                float acc = data(0, n)[i];
                for (int s = 1; s < p; s++) acc += data(s, n)[i];
                want[i] = acc;
            }
            List<float[]> got = ThreadCommunicator.run(p, T, c -> {
                float[] buf = new float[n + off + 3];
                System.arraycopy(data(c.rank(), n), 0, buf, off, n);
                c.allReduceSum(buf, off, n);
                assertEquals(Traffic.allReduce(4L * n, p), c.bytesSent());
                return java.util.Arrays.copyOfRange(buf, off, off + n);
            });
            for (float[] g : got) assertArrayEquals(want, g, "p=" + p);
        }
    }

    @Test void doubleAllReduce() {
        List<double[]> got = ThreadCommunicator.run(3, T, c -> {
            double[] d = {c.rank(), 1, 0.5 * c.rank()};
            c.allReduceSum(d, 1, 2);
            return d;
        });
        for (int r = 0; r < 3; r++) assertArrayEquals(new double[]{r, 3, 1.5}, got.get(r));
    }

    @Test void reduceScatterAllGatherAndBroadcast() {
        int p = 4, count = 7;
        List<float[]> got = ThreadCommunicator.run(p, T, c -> {
            float[] buf = new float[p * count];
            for (int i = 0; i < buf.length; i++) buf[i] = i + 1000 * c.rank();
            c.reduceScatterSum(buf, 0, count);
            for (int i = 0; i < count; i++) {
                int j = c.rank() * count + i;
                assertEquals(p * j + 1000f * (0 + 1 + 2 + 3), buf[j]);
            }
            float[] g = new float[p * count];
            for (int i = 0; i < count; i++) g[c.rank() * count + i] = c.rank() * 10 + i;
            c.allGather(g, 0, count);
            return g;
        });
        for (float[] g : got)
            for (int s = 0; s < p; s++)
                for (int i = 0; i < count; i++) assertEquals(s * 10 + i, g[s * count + i]);
    }

    @Test void sendAndRecvBothWaysWithoutDeadlockAndByTag() {
        List<float[]> got = ThreadCommunicator.run(2, T, c -> {
            int peer = 1 - c.rank();
            c.send(new float[]{c.rank(), 1}, 0, 2, peer, 5);
            c.send(new float[]{c.rank(), 2}, 0, 2, peer, 6);
            float[] a = new float[2], b = new float[2];
            c.recv(b, 0, 2, peer, 6); // out of order by tag
            c.recv(a, 0, 2, peer, 5);
            return new float[]{a[0], a[1], b[0], b[1]};
        });
        assertArrayEquals(new float[]{1, 1, 1, 2}, got.get(0));
        assertArrayEquals(new float[]{0, 1, 0, 2}, got.get(1));
    }

    @Test void splitMakesIndependentSubGroups() {
        // 4 ranks as dp=2 x tp=2: tp groups {0,1},{2,3}; dp groups {0,2},{1,3}
        List<int[]> got = ThreadCommunicator.run(4, T, c -> {
            Communicator tp = c.split(c.rank() / 2, c.rank());
            Communicator dp = c.split(c.rank() % 2, c.rank());
            float[] x = {c.rank()};
            tp.allReduceSum(x, 0, 1);
            float[] y = {c.rank()};
            dp.allReduceSum(y, 0, 1);
            return new int[]{tp.rank(), tp.size(), (int) x[0], dp.rank(), dp.size(), (int) y[0]};
        });
        assertArrayEquals(new int[]{0, 2, 1, 0, 2, 2}, got.get(0));
        assertArrayEquals(new int[]{1, 2, 1, 0, 2, 4}, got.get(1));
        assertArrayEquals(new int[]{0, 2, 5, 1, 2, 2}, got.get(2));
        assertArrayEquals(new int[]{1, 2, 5, 1, 2, 4}, got.get(3));
    }

    @Test void aRankThatThrowsStopsTheOthersAtOnce() {
        long t0 = System.nanoTime();
        WaferException e = assertThrows(WaferException.class, () -> ThreadCommunicator.run(3, Duration.ofMinutes(5), c -> {
            float[] x = new float[10];
            c.allReduceSum(x, 0, 10);
            if (c.rank() == 1) throw new IllegalStateException("out of memory on purpose");
            c.allReduceSum(x, 0, 10); // ranks 0 and 2 wait here for rank 1
            return null;
        }));
        assertTrue(e.getMessage().contains("rank 1 failed") && e.getMessage().contains("out of memory on purpose"), e.getMessage());
        assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "the others must not wait for the timeout");
    }

    @Test void aRankThatStopsAnsweringIsCaughtByTheTimeout() {
        WaferException e = assertThrows(WaferException.class, () -> ThreadCommunicator.run(2, Duration.ofMillis(300), c -> {
            float[] x = new float[4];
            if (c.rank() == 0) c.allReduceSum(x, 0, 4); // rank 1 never comes
            return null;
        }));
        assertTrue(e.getMessage().contains("timed out") && e.getMessage().contains("waiting for rank(s) [1]"), e.getMessage());
        WaferException r = assertThrows(WaferException.class, () -> ThreadCommunicator.run(2, Duration.ofMillis(300), c -> {
            if (c.rank() == 0) c.recv(new float[1], 0, 1, 1, 0);
            return null;
        }));
        assertTrue(r.getMessage().contains("no message from rank 1"), r.getMessage());
    }

    @Test void mismatchedCollectivesAreNamed() {
        WaferException e = assertThrows(WaferException.class, () -> ThreadCommunicator.run(2, T, c -> {
            c.allReduceSum(new float[8], 0, c.rank() == 0 ? 8 : 4);
            return null;
        }));
        assertTrue(e.getMessage().contains("collective mismatch"), e.getMessage());
    }

    /** --comm-timeout: seconds, positive and finite, or refused by name. */
    @Test void commTimeoutIsPositiveSeconds() {
        assertEquals(Duration.ofMillis(2500), ParallelPretrain.timeout(2.5));
        for (double bad : new double[]{0, -1, Double.NaN, Double.POSITIVE_INFINITY})
            assertTrue(assertThrows(WaferException.class, () -> ParallelPretrain.timeout(bad)).getMessage().contains("--comm-timeout"));
    }
}
