package ai.wafer.data;

import ai.wafer.WaferException;
import ai.wafer.io.TokenShard;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TokenLoaderTest {
    @TempDir Path tmp;

    /** Two shards holding tokens 0..n-1 in order (value = global position), split at {@code cut}. */
    List<Path> shards(int n, int cut) {
        int[] all = new int[n];
        for (int i = 0; i < n; i++) all[i] = i;
        Path a = tmp.resolve("x_train_000000.bin"), b = tmp.resolve("x_train_000001.bin");
        TokenShard.write(a, Arrays.copyOfRange(all, 0, cut));
        TokenShard.write(b, Arrays.copyOfRange(all, cut, n));
        return List.of(a, b);
    }

    @Test void sequentialFollowsTheContractAcrossShards() {
        int n = 400, B = 2, T = 8;
        try (TokenLoader l = new TokenLoader(shards(n, 123), B, T, false, 0)) {
            assertEquals(List.of(tmp.resolve("x_train_000000.bin"), tmp.resolve("x_train_000001.bin")), TokenLoader.shards(tmp, "train"));
            int[] in = new int[B * T], tg = new int[B * T];
            for (int k = 0; k < 60; k++) {
                l.nextBatch(in, tg);
                for (int b = 0; b < B; b++) {
                    long start = ((long) (k * B + b) * T) % (n - T - 1);
                    for (int t = 0; t < T; t++) {
                        assertEquals(start + t, in[b * T + t], "batch " + k + " row " + b);
                        assertEquals(start + t + 1, tg[b * T + t]);
                    }
                }
            }
        }
    }

    @Test void shuffledVisitsEveryWindowOncePerEpochAndDiffersByEpoch() {
        int n = 1000, B = 3, T = 10, w = (n - T - 1) / T;
        try (TokenLoader l = new TokenLoader(shards(n, 500), B, T, true, 7)) {
            assertEquals(w, l.windowsPerEpoch());
            long[] e0 = new long[w], e1 = new long[w];
            for (int r = 0; r < w; r++) e0[r] = l.start(r);
            for (int r = 0; r < w; r++) e1[r] = l.start(w + r);
            long[] sorted = e0.clone();
            Arrays.sort(sorted);
            for (int i = 0; i < w; i++) assertEquals((long) i * T, sorted[i]);
            assertFalse(Arrays.equals(e0, e1));
            int[] in = new int[B * T], tg = new int[B * T];
            l.nextBatch(in, tg);
            assertEquals(e0[0], in[0]);
            assertEquals(e0[1], in[T]);
        }
    }

    @Test void restoreContinuesExactly() throws Exception {
        List<Path> s = shards(600, 300);
        int B = 4, T = 16;
        for (boolean shuffle : new boolean[] {false, true}) {
            int[] in = new int[B * T], tg = new int[B * T], in2 = new int[B * T], tg2 = new int[B * T];
            try (TokenLoader a = new TokenLoader(s, B, T, shuffle, 3); TokenLoader b = new TokenLoader(s, B, T, shuffle, 3)) {
                for (int k = 0; k < 13; k++) a.nextBatch(in, tg);
                ObjectMapper om = new ObjectMapper();
                String json = om.writeValueAsString(a.state());
                b.restore(om.readValue(json, TokenLoader.State.class));
                for (int k = 0; k < 20; k++) {
                    a.nextBatch(in, tg);
                    b.nextBatch(in2, tg2);
                    assertArrayEquals(in, in2);
                    assertArrayEquals(tg, tg2);
                }
                assertTrue(a.epoch() >= 1);
            }
            try (TokenLoader c = new TokenLoader(s, B, T + 1, shuffle, 3)) {
                assertThrows(WaferException.class, () -> c.restore(new TokenLoader.State(5, 600, T, shuffle ? 1 : 0, 3)));
            }
        }
    }

    @Test void tooFewTokensIsAClearError() {
        var e = assertThrows(WaferException.class, () -> new TokenLoader(shards(20, 10), 1, 32, false, 0));
        assertTrue(e.getMessage().contains("too few"), e.getMessage());
    }
}
