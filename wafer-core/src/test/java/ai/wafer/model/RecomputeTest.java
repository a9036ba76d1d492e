package ai.wafer.model;

import ai.wafer.parallel.Layout;
import ai.wafer.parallel.Plan;
import ai.wafer.train.AdamW;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Activation recomputation ({@link Gpt#setRecompute}): backward reruns each block's forward from its kept input, so the
 * loss, every gradient and the trained values are the same bits as with every layer's activations kept, while the
 * activations hold one set of per-layer buffers (and every layer's output) instead of one set per layer.
 */
class RecomputeTest {
    /** Three layers, so a middle block's recomputation (neither top nor bottom) is exercised. */
    private static final GptConfig CFG = GptConfig.of(3, 24, 2, 53, 32);

    private static int[] tokens(int n, long seed, boolean someIgnored) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = someIgnored && i % 7 == 3 ? -100 : r.nextInt(CFG.vocabSize());
        return t;
    }

    /** Two steps of forward, backward and AdamW: each step's loss, then every parameter's gradient and values. */
    private static List<float[]> train(boolean recompute) {
        Gpt m = Gpt.init(CFG, 5);
        m.setRecompute(recompute);
        AdamW opt = new AdamW(m.parameters(), AdamW.Hyper.defaults());
        List<float[]> out = new ArrayList<>();
        for (int step = 0; step < 2; step++) {
            m.zeroGrad();
            float loss = m.forward(tokens(3 * 16, step, false), tokens(3 * 16, 10 + step, true), 3, 16);
            m.backward();
            out.add(new float[] {loss});
            for (Parameter p : m.parameters()) out.add(p.gradArray().clone());
            opt.step(1e-2f, 1f);
        }
        for (Parameter p : m.parameters()) out.add(p.array().clone());
        return out;
    }

    @Test void lossAndEveryGradientAreTheSameBits() {
        List<float[]> kept = train(false), recomputed = train(true);
        assertEquals(kept.size(), recomputed.size());
        for (int i = 0; i < kept.size(); i++) assertArrayEquals(kept.get(i), recomputed.get(i), "tensor " + i + " of the two steps");
    }

    @Test void theProfileShowsTheRecomputationApart() {
        Gpt m = Gpt.init(CFG, 5);
        m.setRecompute(true);
        Profile.start();
        try {
            m.forward(tokens(32, 1, false), tokens(32, 2, false), 2, 16);
            m.backward();
        } finally {
            Profile.stop();
        }
        String r = Profile.report(1);
        assertTrue(r.contains("recompute c_attn fwd") && r.contains("recompute attention fwd") && r.contains("c_attn bwd"), r);
    }

    /** Floats in the distinct arrays the activations hold (a shared buffer counted once), logits included. */
    private static long floats(Activations a) {
        Set<float[]> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        long n = 0;
        List<float[]> all = new ArrayList<>(List.of(a.encoded, a.lnf, a.lnfMean, a.lnfRstd, a.logits, a.losses,
                a.dres, a.dx, a.dy, a.dqkv, a.dfch, a.lnScratch, a.attScratch, a.dadapt));
        for (float[][] per : List.of(a.ln1, a.ln1Mean, a.ln1Rstd, a.qkv, a.att, a.atty, a.res2, a.ln2, a.ln2Mean, a.ln2Rstd,
                a.fch, a.fchAct, a.res3)) all.addAll(List.of(per));
        for (float[] x : all) if (x != null && seen.add(x)) n += x.length;
        return n;
    }

    private static Activations activations(boolean recompute, int B, int T) {
        Gpt m = new Gpt(CFG);
        m.setRecompute(recompute);
        m.reserve(B, T);
        m.activations().ensureLogits();
        return m.activations();
    }

    @Test void recomputeAllocatesOneLayerSetAndThePlanPredictsTheSaving() {
        int B = 3, T = 16, L = CFG.nLayer();
        long kept = floats(activations(false, B, T)), recomputed = floats(activations(true, B, T));
        // per layer: ln_1, res2, ln_2, res3 [BT, C]; qkv [BT, 3C]; atty [BT, C]; fch, fchAct [BT, F]; 4 LayerNorm stats [BT];
        // attention probabilities [B, H, T, T]. Recompute keeps res3 of every layer and one set of the rest.
        long n = B * T, C = CFG.nEmbd(), F = CFG.nInner();
        long rest = n * (C + 3 * C + C + C + C + 2 * F + 4) + B * CFG.nHead() * (long) T * T;
        assertEquals((L - 1) * rest, kept - recomputed);
        assertTrue(recomputed < kept);
        // wafer plan --recompute predicts exactly that saving for the same batch
        long plain = Plan.of(CFG, Layout.single(), B, T, 1, false, 1).worst().activations();
        long withRecompute = Plan.of(CFG, Layout.single(), B, T, 1, false, 1, true).worst().activations();
        assertEquals(kept - recomputed, plain - withRecompute);
    }

    @Test void planOfThe111mShape() {
        // 10 layers, C 768, F 3072, 12 heads, batch 4 x 256 (n = 1024 tokens): a layer's buffers but its output are
        // 1024 * (7 * 768 + 2 * 3072 + 4) + 4 * 12 * 256^2 = 14,946,304 floats; recompute keeps one set instead of 10
        GptConfig c = GptConfig.preset("cerebras-gpt-111m");
        long plain = Plan.of(c, Layout.single(), 4, 256, 1, false, 1).worst().activations();
        long recomputed = Plan.of(c, Layout.single(), 4, 256, 1, false, 1, true).worst().activations();
        assertEquals(9 * 14_946_304L, plain - recomputed); // 538 MB less
        assertTrue(Plan.of(c, Layout.single(), 4, 256, 1, false, 1, true).report(1, 0, 0).contains(", activation recomputation"));
    }
}
