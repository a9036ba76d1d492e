package ai.wafer.model;

import ai.wafer.tensor.Parallel;

/**
 * Every buffer one forward and backward pass of a batch [B, T] needs, allocated once and reused
 * (llm.c's ActivationTensors), sized by the model's shard: its layers, its share of the heads, of
 * n_inner and of the vocabulary; ln_f and the logits only on the last pipeline stage. Per-layer arrays
 * keep what the backward pass reads; the d* buffers are scratch for backward, which a pipeline's
 * micro-batches in flight share (one backward runs at a time).
 */
public final class Activations {
    final int maxB, maxT;
    int B, T;
    boolean hasTargets;
    int validTargets;
    double lossSum;
    final int[] inputs, targets;
    /** Row b's first real token under left padding (copied from the batch); read only when {@link #leftPadded}. */
    final int[] start;
    boolean leftPadded;
    public final float[] encoded;
    final float[][] ln1, ln1Mean, ln1Rstd, qkv, att, atty, res2, ln2, ln2Mean, ln2Rstd, fch, fchAct, res3;
    final float[] lnf, lnfMean, lnfRstd;
    /**
     * Logits [B*T, V] after a forward without targets; the softmax, then dlogits, with targets (V: this rank's
     * vocabulary slice). Allocated by the first pass through the LM head: classification heads never need it,
     * and at V = 50257 it is the largest activation of the model.
     */
    public float[] logits;
    private final int vocab;
    /** Per-token loss of the last forward with targets. */
    public final float[] losses;
    /** Vocabulary-parallel cross-entropy: every rank's row maxima [n, B*T]; sums of exponentials and target logits [2, B*T]. */
    final float[] rowMax, stats;
    final float[] dres, dx, dy, dqkv, dfch, lnScratch, attScratch;
    /** Gradient scratch for a bottleneck adapter's input (dres must survive it: it also feeds the residual). */
    final float[] dadapt;

    /** Buffers for {@code m}'s shard; the backward scratch is {@code scratch}'s when given (same or larger shape). */
    Activations(Gpt m, int B, int T, Activations scratch) {
        this.maxB = B;
        this.maxT = T;
        GptConfig c = m.config;
        int L = m.h.length, C = c.nEmbd(), Cl = m.Cl, Fl = m.Fl, BT = B * T;
        inputs = new int[BT];
        targets = new int[BT];
        start = new int[B];
        encoded = new float[BT * C];
        ln1 = new float[L][BT * C]; ln1Mean = new float[L][BT]; ln1Rstd = new float[L][BT];
        qkv = new float[L][BT * 3 * Cl];
        att = new float[L][Math.multiplyExact(B * m.Hl, T * T)];
        atty = new float[L][BT * Cl]; res2 = new float[L][BT * C];
        ln2 = new float[L][BT * C]; ln2Mean = new float[L][BT]; ln2Rstd = new float[L][BT];
        fch = new float[L][BT * Fl]; fchAct = new float[L][BT * Fl]; res3 = new float[L][BT * C];
        boolean last = m.lastStage(), split = m.tpSize > 1;
        lnf = last ? new float[BT * C] : null;
        lnfMean = last ? new float[BT] : null;
        lnfRstd = last ? new float[BT] : null;
        vocab = m.v1 - m.v0;
        losses = last ? new float[BT] : null;
        rowMax = last && split ? new float[BT * m.tpSize] : null;
        stats = last && split ? new float[2 * BT] : null;
        Activations s = scratch;
        dres = s != null ? s.dres : new float[BT * C];
        dx = s != null ? s.dx : new float[BT * C];
        dy = s != null ? s.dy : new float[BT * Cl];
        dqkv = s != null ? s.dqkv : new float[BT * 3 * Cl];
        dfch = s != null ? s.dfch : new float[BT * Fl];
        lnScratch = s != null ? s.lnScratch : new float[Parallel.threads() * 2 * C];
        attScratch = s != null ? s.attScratch : new float[Parallel.threads() * T * T];
        dadapt = s != null ? s.dadapt : m.isShard() ? null : new float[BT * C]; // adapters hook whole models only
    }

    /** Allocates {@link #logits} for the largest batch these buffers serve, once. */
    void ensureLogits() {
        if (logits == null) logits = new float[Math.multiplyExact(maxB * maxT, vocab)];
    }

    /**
     * Buffers for [maxB, maxT] serve any smaller batch too: every kernel lays out [B, T] densely from
     * offset 0, so a padded batch of a shorter length reuses them (fine-tuning batches vary in length).
     */
    boolean fits(int B, int T) { return B <= maxB && T <= maxT; }

    public int batch() { return B; }
    public int seqLen() { return T; }

    /** The left padding the kernels see: null when no row of the batch has any, so that path is unchanged. */
    int[] leftPad() { return leftPadded ? start : null; }

    /** The final hidden states, ln_f's output [B*T, C] (rows beyond B*T are stale). */
    public float[] hidden() { return lnf; }

    /** A pipeline stage's output: the residual stream after its last layer [B*T, C], what the next stage takes. */
    public float[] output() { return res3[res3.length - 1]; }

    /** Summed loss of the targets of the last forward with targets (the last stage's), and how many counted. */
    public double lossSum() { return lossSum; }
    public int validTargets() { return validTargets; }
}
