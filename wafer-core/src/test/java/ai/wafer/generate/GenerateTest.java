package ai.wafer.generate;

import ai.wafer.model.KvCache;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class GenerateTest {
    static final Gpt GPT = Gpt.init(GptConfig.of(2, 64, 4, 101, 600), 7);
    static final InferenceModel F32 = new InferenceModel(GPT, WeightType.F32);

    /** The same model (same seed) for a bf16 run: bf16 converts a model's weights in place, GPT must stay float32. */
    static Gpt sameModel() { return Gpt.init(GptConfig.of(2, 64, 4, 101, 600), 7); }

    static int[] prompt(int n, int seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = (i * 37 + seed * 11 + 3) % 101;
        return p;
    }

    /** The reference: the whole sequence recomputed by the training forward, argmax of the last row. */
    static int[] greedyByRecompute(Gpt m, int[] prompt, int n) {
        int[] seq = Arrays.copyOf(prompt, prompt.length + n);
        int V = m.config.vocabSize();
        for (int i = 0; i < n; i++) {
            int T = prompt.length + i;
            m.forward(seq, null, 1, T);
            seq[T] = Sampler.argmax(m.activations().logits, (T - 1) * V, V);
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    @Test void greedyWithCacheEqualsRecomputingTheSequence() {
        int[] p = prompt(7, 1);
        int[] expected = greedyByRecompute(GPT, p, 24);
        Generator.Result r = new Generator(F32, null).generate(p, SamplingParams.greedy(24), null);
        assertArrayEquals(expected, r.tokens());
        assertEquals(FinishReason.LENGTH, r.finishReason());
    }

    @Test void prefillLogitsMatchTheTrainingForwardAcrossChunks() {
        int[] p = prompt(530, 2); // longer than one prefill chunk
        float[] logits = new float[101];
        KvCache c = F32.newCache(540);
        F32.prefill(c, p, 0, p.length, logits);
        GPT.forward(p, null, 1, p.length);
        float[] ref = Arrays.copyOfRange(GPT.activations().logits, (p.length - 1) * 101, p.length * 101);
        ai.wafer.testutil.Fixtures.assertClose("last-position logits", ref, logits, 1e-3);
        // a second prefill after the first continues the sequence
        int[] more = prompt(3, 3);
        F32.prefill(c, more, 0, 3, logits);
        int[] all = Arrays.copyOf(p, 533);
        System.arraycopy(more, 0, all, 530, 3);
        GPT.forward(all, null, 1, 533);
        ai.wafer.testutil.Fixtures.assertClose("continued prefill", Arrays.copyOfRange(GPT.activations().logits, 532 * 101, 533 * 101), logits, 1e-3);
    }

    @Test void bf16StaysCloseToFloat32() { staysCloseToFloat32(WeightType.BF16); }

    @Test void int8StaysCloseToFloat32() { staysCloseToFloat32(WeightType.INT8); }

    @Test void int8InGroupsStaysCloseToFloat32() { staysCloseToFloat32(WeightType.parse("int8", 32)); }

    private void staysCloseToFloat32(WeightType type) {
        InferenceModel bf = new InferenceModel(sameModel(), type);
        int[] p = prompt(9, 4);
        float[] a = new float[101], b = new float[101];
        F32.prefill(F32.newCache(16), p, 0, p.length, a);
        bf.prefill(bf.newCache(16), p, 0, p.length, b);
        assertNear(type + " logits", a, b);
        KvCache ca = F32.newCache(16), cb = bf.newCache(16);
        F32.prefill(ca, p, 0, 8, a);
        bf.prefill(cb, p, 0, 8, b);
        F32.decode(new KvCache[] {ca}, new int[] {p[8]}, 1, a);
        bf.decode(new KvCache[] {cb}, new int[] {p[8]}, 1, b);
        assertNear(type + " decode logits", a, b);
    }

    /** bf16 keeps 8 bits of mantissa, int8 a 127th of each channel's largest weight: errors of a few parts in a thousand of the logits' scale, not relative to each. */
    static void assertNear(String what, float[] expected, float[] actual) {
        double scale = 0, worst = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(worst <= 0.03 * scale, what + ": max error " + worst + " against a scale of " + scale);
    }

    /**
     * Generates after every prompt, decoding all unfinished sequences together in each step (the weights are read
     * once per step for all of them), as the server's batch engine does; greedy, so no per-row seeds.
     */
    static List<Generator.Result> generateBatch(Generator g, List<int[]> prompts, SamplingParams p) {
        InferenceModel model = g.model();
        int n = prompts.size(), V = model.vocabSize();
        Sequence[] seqs = new Sequence[n];
        float[] logits = new float[n * V];
        for (int i = 0; i < n; i++) {
            seqs[i] = new Sequence(model, g.tokenizer(), prompts.get(i), p, null);
            seqs[i].prefill(logits);
        }
        KvCache[] caches = new KvCache[n];
        int[] last = new int[n];
        Sequence[] active = new Sequence[n];
        while (true) {
            int m = 0;
            for (Sequence s : seqs) if (!s.done()) active[m++] = s;
            if (m == 0) break;
            for (int i = 0; i < m; i++) { caches[i] = active[i].cache; last[i] = active[i].last(); }
            model.decode(caches, last, m, logits);
            for (int i = 0; i < m; i++) active[i].accept(logits, i * V);
        }
        List<Generator.Result> out = new java.util.ArrayList<>();
        for (Sequence s : seqs) out.add(new Generator.Result(s.generated(), s.text(), s.finishReason(), s.promptLength, 0, 0));
        return out;
    }

    @Test void batchedDecodingEqualsOneAtATime() {
        Generator g = new Generator(F32, null);
        List<int[]> prompts = List.of(prompt(5, 1), prompt(12, 2), prompt(3, 3));
        List<Generator.Result> batch = generateBatch(g, prompts, SamplingParams.greedy(15));
        for (int i = 0; i < prompts.size(); i++)
            assertArrayEquals(g.generate(prompts.get(i), SamplingParams.greedy(15), null).tokens(), batch.get(i).tokens(), "row " + i);
        // an odd and an even batch with bf16 too (the kernel pairs rows)
        InferenceModel bf = new InferenceModel(sameModel(), WeightType.BF16);
        Generator gb = new Generator(bf, null);
        List<Generator.Result> bb = generateBatch(gb, prompts.subList(0, 2), SamplingParams.greedy(10));
        for (int i = 0; i < 2; i++) assertArrayEquals(gb.generate(prompts.get(i), SamplingParams.greedy(10), null).tokens(), bb.get(i).tokens());
        Generator gi = new Generator(new InferenceModel(sameModel(), WeightType.INT8), null);
        List<Generator.Result> bi = generateBatch(gi, prompts, SamplingParams.greedy(10));
        for (int i = 0; i < 3; i++) assertArrayEquals(gi.generate(prompts.get(i), SamplingParams.greedy(10), null).tokens(), bi.get(i).tokens(), "int8 row " + i);
    }

    static SamplingParams sampling(float temp, int topK, float topP, float minP, Long seed) {
        return new SamplingParams(30, temp, topK, topP, minP, 1f, List.of(), List.of(), seed, 1);
    }

    @Test void aFixedSeedRepeats() {
        Generator g = new Generator(F32, null);
        int[] p = prompt(4, 5);
        SamplingParams s = sampling(1.5f, 0, 0.95f, 0f, 1234L);
        int[] a = g.generate(p, s, null).tokens(), b = g.generate(p, s, null).tokens();
        assertArrayEquals(a, b);
        int[] c = g.generate(p, s.withSeed(99L), null).tokens();
        assertFalse(Arrays.equals(a, c), "another seed should give another sample");
        assertArrayEquals(g.generate(p, sampling(1f, 40, 0.9f, 0.05f, 5L), null).tokens(),
                g.generate(p, sampling(1f, 40, 0.9f, 0.05f, 5L), null).tokens());
    }

    @Test void topKOneEqualsGreedy() {
        Generator g = new Generator(F32, null);
        int[] p = prompt(6, 6);
        assertArrayEquals(g.generate(p, SamplingParams.greedy(20), null).tokens(),
                g.generate(p, sampling(1.3f, 1, 1f, 0f, 3L).withMaxNewTokens(20), null).tokens());
    }

    @Test void stopTokensEndTheSequenceAndAreNotReturned() {
        Generator g = new Generator(F32, null);
        int[] p = prompt(6, 7);
        int[] free = g.generate(p, SamplingParams.greedy(10), null).tokens();
        int stop = free[4];
        int firstAt = 0;
        while (free[firstAt] != stop) firstAt++;
        Generator.Result r = g.generate(p, SamplingParams.greedy(10).withStopTokens(List.of(stop)), null);
        assertArrayEquals(Arrays.copyOf(free, firstAt), r.tokens());
        assertEquals(FinishReason.STOP, r.finishReason());
    }

    @Test void theListenerHearsEveryTokenInOrder() {
        Generator g = new Generator(F32, null);
        List<Integer> heard = new java.util.ArrayList<>();
        Generator.Result r = g.generate(prompt(3, 8), SamplingParams.greedy(12), (t, s) -> heard.add(t));
        assertEquals(Arrays.stream(r.tokens()).boxed().toList(), heard);
    }

    @Test void beamSearchWithAllTokensAsBeamsIsExhaustive() {
        Gpt small = Gpt.init(GptConfig.of(1, 16, 2, 11, 32), 3);
        InferenceModel m = new InferenceModel(small, WeightType.F32);
        int[] p = {1, 2, 3};
        SamplingParams beams = new SamplingParams(2, 0f, 0, 1f, 0f, 1f, List.of(), List.of(), null, 11);
        int[] got = new Generator(m, null).generate(p, beams, null).tokens();
        double best = Double.NEGATIVE_INFINITY;
        int[] arg = null;
        for (int a = 0; a < 11; a++) for (int b = 0; b < 11; b++) {
            double s = logProb(small, new int[] {1, 2, 3, a, b}, 3);
            if (s > best) { best = s; arg = new int[] {a, b}; }
        }
        assertArrayEquals(arg, got);
        // one beam is greedy
        SamplingParams one = new SamplingParams(6, 0f, 0, 1f, 0f, 1f, List.of(), List.of(), null, 1);
        SamplingParams three = new SamplingParams(6, 0f, 0, 1f, 0f, 1f, List.of(), List.of(), null, 3);
        Generator g = new Generator(m, null);
        assertTrue(logProb(small, cat(p, g.generate(p, three, null).tokens()), 3)
                >= logProb(small, cat(p, g.generate(p, one, null).tokens()), 3) - 1e-5);
    }

    static int[] cat(int[] a, int[] b) {
        int[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** Sum of log p(seq[t] | seq[..t]) for t >= from. */
    static double logProb(Gpt m, int[] seq, int from) {
        int V = m.config.vocabSize();
        m.forward(seq, null, 1, seq.length);
        float[] lg = m.activations().logits;
        double s = 0;
        for (int t = from; t < seq.length; t++) {
            int o = (t - 1) * V;
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < V; v++) max = Math.max(max, lg[o + v]);
            double z = 0;
            for (int v = 0; v < V; v++) z += Math.exp(lg[o + v] - max);
            s += lg[o + seq[t]] - max - Math.log(z);
        }
        return s;
    }
}
