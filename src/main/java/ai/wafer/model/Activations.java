package ai.wafer.model;

import ai.wafer.tensor.Parallel;

/**
 * Every buffer one forward and backward pass of a batch [B, T] needs, allocated once and reused
 * (llm.c's ActivationTensors). Per-layer arrays keep what the backward pass reads; the d* buffers
 * are scratch shared by all layers during backward.
 */
public final class Activations {
    final int maxB, maxT;
    int B, T;
    boolean hasTargets;
    int validTargets;
    final int[] inputs, targets;
    /** Row b's first real token under left padding (copied from the batch); read only when {@link #leftPadded}. */
    final int[] start;
    boolean leftPadded;
    public final float[] encoded;
    final float[][] ln1, ln1Mean, ln1Rstd, qkv, att, atty, res2, ln2, ln2Mean, ln2Rstd, fch, fchAct, res3;
    final float[] lnf, lnfMean, lnfRstd;
    /**
     * Logits [B*T, V] after a forward without targets; the softmax, then dlogits, with targets. Allocated by
     * the first pass through the LM head: classification heads never need it, and at V = 50257 it is the
     * largest activation of the model.
     */
    public float[] logits;
    private final int vocab;
    /** Per-token loss of the last forward with targets. */
    public final float[] losses;
    final float[] dres, dx, dy, dqkv, dfch, lnScratch, attScratch;
    /** Gradient scratch for a bottleneck adapter's input (dres must survive it: it also feeds the residual). */
    final float[] dadapt;

    Activations(GptConfig c, int B, int T) {
        this.maxB = B;
        this.maxT = T;
        int L = c.nLayer(), C = c.nEmbd(), F = c.nInner(), V = c.vocabSize(), H = c.nHead(), BT = B * T;
        inputs = new int[BT];
        targets = new int[BT];
        start = new int[B];
        encoded = new float[BT * C];
        ln1 = new float[L][BT * C]; ln1Mean = new float[L][BT]; ln1Rstd = new float[L][BT];
        qkv = new float[L][BT * 3 * C];
        att = new float[L][Math.multiplyExact(B * H, T * T)];
        atty = new float[L][BT * C]; res2 = new float[L][BT * C];
        ln2 = new float[L][BT * C]; ln2Mean = new float[L][BT]; ln2Rstd = new float[L][BT];
        fch = new float[L][BT * F]; fchAct = new float[L][BT * F]; res3 = new float[L][BT * C];
        lnf = new float[BT * C]; lnfMean = new float[BT]; lnfRstd = new float[BT];
        vocab = V;
        losses = new float[BT];
        dres = new float[BT * C]; dx = new float[BT * C]; dy = new float[BT * C];
        dqkv = new float[BT * 3 * C]; dfch = new float[BT * F];
        lnScratch = new float[Parallel.threads() * 2 * C];
        attScratch = new float[Parallel.threads() * T * T];
        dadapt = new float[BT * C];
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
}
