package ai.wafer.generate;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    static SamplingParams params(float temp, int topK, float topP, float minP, float rep, long seed) {
        return new SamplingParams(10, temp, topK, topP, minP, rep, List.of(), List.of(), seed, 1);
    }

    /** Logits of probabilities 0.5, 0.3, 0.15, 0.05 over four tokens (in a shuffled order). */
    static float[] logits() {
        return new float[] {(float) Math.log(0.15), (float) Math.log(0.5), (float) Math.log(0.05), (float) Math.log(0.3)};
    }

    static int[] histogram(SamplingParams p, int draws) {
        Sampler s = new Sampler(p, 4);
        int[] h = new int[4];
        for (int i = 0; i < draws; i++) h[s.next(logits(), 0, new int[0], 0)]++;
        return h;
    }

    @Test void temperatureOneFollowsTheDistribution() {
        int[] h = histogram(params(1f, 0, 1f, 0f, 1f, 1), 20000);
        assertEquals(0.5, h[1] / 20000.0, 0.02);
        assertEquals(0.3, h[3] / 20000.0, 0.02);
        assertEquals(0.15, h[0] / 20000.0, 0.02);
        assertEquals(0.05, h[2] / 20000.0, 0.01);
    }

    @Test void topKTopPAndMinPCutTheTail() {
        int[] k2 = histogram(params(1f, 2, 1f, 0f, 1f, 2), 5000);
        assertEquals(0, k2[0] + k2[2]);
        assertEquals(0.625, k2[1] / 5000.0, 0.03); // 0.5 / 0.8
        int[] p = histogram(params(1f, 0, 0.7f, 0f, 1f, 3), 5000); // 0.5 + 0.3 reaches 0.7
        assertEquals(0, p[0] + p[2]);
        assertTrue(p[3] > 0);
        int[] m = histogram(params(1f, 0, 1f, 0.25f, 1f, 4), 5000); // keeps p >= 0.125
        assertEquals(0, m[2]);
        assertTrue(m[0] > 0 && m[3] > 0);
    }

    @Test void greedyIsArgmaxAndTemperatureZeroIgnoresTheSeed() {
        assertEquals(1, new Sampler(params(0f, 0, 1f, 0f, 1f, 1), 4).next(logits(), 0, new int[0], 0));
        assertEquals(1, new Sampler(params(2f, 1, 1f, 0f, 1f, 9), 4).next(logits(), 0, new int[0], 0));
    }

    @Test void repetitionPenaltyFollowsCtrl() {
        float[] l = {2f, -1f, 1.5f};
        Sampler s = new Sampler(params(0f, 0, 1f, 0f, 2f, 1), 3);
        // token 0 was seen (twice: penalised once): 2 / 2 = 1 < 1.5, so token 2 wins
        assertEquals(2, s.next(l, 0, new int[] {0, 1, 0}, 3));
        assertEquals(1f, l[0]);
        assertEquals(-2f, l[1]);
        assertEquals(1.5f, l[2]);
    }

    /** Issue 13, item 6: logits that give no probabilities (NaN, infinity) are an error of this sequence, never a token. */
    @Test void nonFiniteLogitsAreAnErrorNotAToken() {
        float[] nan = {Float.NaN, Float.NaN, Float.NaN, Float.NaN};
        float[] inf = {0f, Float.POSITIVE_INFINITY, 1f, 2f};
        for (SamplingParams p : List.of(params(1f, 0, 0.9f, 0f, 1f, 1), params(1f, 0, 1f, 0f, 1f, 1), params(0.7f, 2, 1f, 0.1f, 1.2f, 1),
                params(0f, 0, 1f, 0f, 1f, 1))) {
            for (float[] x : List.of(nan, inf)) {
                var e = assertThrows(ai.wafer.WaferException.class, () -> new Sampler(p, 4).next(x.clone(), 0, new int[] {1}, 1), p.toString());
                assertTrue(e.getMessage().contains("not finite"), e.getMessage());
            }
        }
    }

    /** Issue 13, item 6: sampling parameters outside sane ranges are refused, naming the field (subnormal values included). */
    @Test void samplingParametersOutsideSaneRangesAreRefusedByName() {
        record Case(String field, Runnable make) {}
        for (Case c : List.of(new Case("temperature", () -> params(1e-40f, 0, 1f, 0f, 1f, 1)), new Case("temperature", () -> params(0.005f, 0, 1f, 0f, 1f, 1)),
                new Case("temperature", () -> params(2.5f, 0, 1f, 0f, 1f, 1)), new Case("temperature", () -> params(Float.NaN, 0, 1f, 0f, 1f, 1)),
                new Case("repetition_penalty", () -> params(1f, 0, 1f, 0f, 1e-40f, 1)), new Case("repetition_penalty", () -> params(1f, 0, 1f, 0f, 101f, 1)),
                new Case("top_p", () -> params(1f, 0, 0f, 0f, 1f, 1)), new Case("top_p", () -> params(1f, 0, Float.NaN, 0f, 1f, 1)),
                new Case("min_p", () -> params(1f, 0, 1f, 1.5f, 1f, 1)), new Case("top_k", () -> params(1f, -1, 1f, 0f, 1f, 1)))) {
            var e = assertThrows(SamplingParams.Invalid.class, c.make()::run, c.field());
            assertEquals(c.field(), e.field);
        }
        params(0f, 0, 1f, 0f, 1f, 1); // greedy, and the edges of each range, are fine
        params(0.01f, 0, 1e-3f, 1f, 0.01f, 1);
        params(2f, 5, 1f, 0f, 100f, 1);
    }
}
