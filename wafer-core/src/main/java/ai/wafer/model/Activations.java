package ai.wafer.model;

import ai.wafer.tensor.Parallel;

/**
 * Every buffer one forward and backward pass of a batch [B, T] needs, allocated once and reused
 * (llm.c's ActivationTensors), sized by the model's shard: its layers, its share of the heads, of
 * n_inner and of the vocabulary; ln_f and the logits only on the last pipeline stage. Per-layer arrays
 * keep what the backward pass reads (with recompute, res3 only: the rest is one set); the d* buffers are
 * scratch for backward, which a pipeline's micro-batches in flight share (one backward runs at a time).
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
    /** Per-layer buffers but res3 are one set, rebuilt by backward from each block's input ({@link Gpt#setRecompute}). */
    final boolean recompute;
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
    /** Generation only: positions each row's cache held before this pass; per-thread attention scores [T, n_positions]. */
    final int[] past;
    final float[][] scores;

    /**
     * Buffers for {@code m}'s shard; the backward scratch is {@code scratch}'s when given (same or larger shape).
     * For {@code generation} (the cached forward: no backward) every layer shares one set of buffers, since nothing
     * is kept for a backward pass, and there is no backward scratch; instead each thread gets a block of attention
     * scores against the cache.
     */
    Activations(Gpt m, int B, int T, Activations scratch, boolean generation) {
        this.maxB = B;
        this.maxT = T;
        GptConfig c = m.config;
        int L = m.h.length, C = c.nEmbd(), Cl = m.Cl, Fl = m.Fl, BT = B * T;
        inputs = new int[BT];
        targets = new int[BT];
        start = new int[B];
        encoded = new float[BT * C];
        // one set of layer buffers for every layer: generation keeps nothing for backward; recompute (gradient checkpointing)
        // keeps each block's input (the previous res3) and rebuilds the rest of the block just before its backward
        recompute = m.recompute() && !generation;
        boolean one = generation || recompute;
        ln1 = layers(L, BT * C, one); ln1Mean = layers(L, BT, one); ln1Rstd = layers(L, BT, one);
        qkv = layers(L, BT * 3 * Cl, one);
        att = generation ? null : layers(L, Math.multiplyExact(B * m.Hl, T * T), one);
        atty = layers(L, BT * Cl, one); res2 = layers(L, BT * C, one);
        ln2 = layers(L, BT * C, one); ln2Mean = layers(L, BT, one); ln2Rstd = layers(L, BT, one);
        fch = layers(L, BT * Fl, one);
        fchAct = generation ? fch : layers(L, BT * Fl, one); // without a backward, GELU may overwrite its input
        // a block reads its input (the previous res3) before it writes its own res3, so generation may share it too
        res3 = layers(L, BT * C, generation);
        boolean last = m.lastStage(), split = m.tpSize > 1;
        lnf = last ? new float[BT * C] : null;
        lnfMean = last ? new float[BT] : null;
        lnfRstd = last ? new float[BT] : null;
        vocab = m.v1 - m.v0;
        losses = last && !generation ? new float[BT] : null;
        rowMax = last && split ? new float[BT * m.tpSize] : null;
        stats = last && split ? new float[2 * BT] : null;
        Activations s = generation ? null : scratch;
        boolean bwd = !generation;
        dres = s != null ? s.dres : bwd ? new float[BT * C] : null;
        dx = s != null ? s.dx : bwd ? new float[BT * C] : null;
        dy = s != null ? s.dy : bwd ? new float[BT * Cl] : null;
        dqkv = s != null ? s.dqkv : bwd ? new float[BT * 3 * Cl] : null;
        dfch = s != null ? s.dfch : bwd ? new float[BT * Fl] : null;
        lnScratch = s != null ? s.lnScratch : bwd ? new float[Parallel.threads() * 2 * C] : null;
        attScratch = s != null ? s.attScratch : bwd ? new float[Parallel.threads() * T * T] : null;
        dadapt = s != null ? s.dadapt : m.isShard() || !bwd ? null : new float[BT * C]; // adapters hook whole models only
        past = generation ? new int[B] : null;
        scores = generation ? new float[Parallel.threads()][Math.multiplyExact(T, c.nPositions())] : null;
    }

    /** L per-layer buffers of n floats: L arrays, or (shared) one array L times. */
    private static float[][] layers(int L, int n, boolean shared) {
        float[][] a = new float[L][];
        float[] one = shared ? new float[n] : null;
        for (int l = 0; l < L; l++) a[l] = shared ? one : new float[n];
        return a;
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
