package ai.wafer.peft;

import ai.wafer.model.BlockHooks;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Gemm;

import java.util.SplittableRandom;
import java.util.function.LongSupplier;

/**
 * LoRA on one Conv1D layer: out[N,OUT] += scaling * dropout(x) @ A^T @ B^T, with lora_A [r, in] and
 * lora_B [out, r] in PEFT's (nn.Linear) layout, scaling = alpha / r. B starts at zero, so the update
 * starts at zero and the model starts exactly where the base model is.
 *
 * <p>Buffers grow to the largest N seen and are then reused: steady-state steps allocate nothing.
 */
public final class LoraLinear implements BlockHooks.LinearAdapter {
    public final Parameter loraA, loraB;
    final int in, out, r;
    final float scaling, dropout;
    /** The seed of each micro-batch's dropout mask, one draw per micro-batch. */
    private final LongSupplier maskSeeds;
    /** Seeds drawn so far: where the stream stands, for a training checkpoint ({@link #skipSeeds}). */
    private long drawn;
    boolean training = true;
    /** u = x' @ A^T [N, r] (kept for dB) and du, its gradient. */
    private float[] u = new float[0], du = new float[0];
    /**
     * Dropout keeps no [N, in] mask per layer: the mask is drawn from a stream seeded by {@code maskSeed} and drawn
     * again in backward, into scratch shared by every LoRA layer of the model (layers run one at a time).
     */
    private final Scratch scratch;
    private long maskSeed;
    /**
     * The micro-batch's mask seed is drawn (by {@link #beginMicroBatch}, or by its first forward): it holds until backward,
     * so a forward run again in backward (activation recomputation) drops the same inputs.
     */
    private boolean seeded;
    /**
     * Index of this process's first mask element in the global micro-batch's mask: a data-parallel rank computing
     * rows from token row R on draws the elements the one-process run draws for those rows, R * in onwards.
     */
    private long maskOffset;
    private boolean droppedLast;

    /** [N, in] scratch for the dropped input, shared by the LoRA layers of one model. */
    static final class Scratch {
        float[] xd = new float[0];

        float[] of(int n) {
            if (xd.length < n) xd = new float[n];
            return xd;
        }
    }

    LoraLinear(String name, int in, int out, int r, float alpha, float dropout, SplittableRandom rng, Scratch scratch) {
        // the mask stream is split off before A is drawn from rng: that order fixes the A and masks a seed gives
        this(name, in, out, r, alpha, dropout, rng.split()::nextLong, rng, scratch);
    }

    /**
     * With the mask seeds given: a test that passes a constant seed sees one fixed function (every forward drops
     * the same inputs), which finite differences need. A is drawn from {@code rng}.
     */
    LoraLinear(String name, int in, int out, int r, float alpha, float dropout, LongSupplier maskSeeds,
               SplittableRandom rng, Scratch scratch) {
        this.maskSeeds = maskSeeds;
        this.scratch = scratch;
        this.in = in;
        this.out = out;
        this.r = r;
        this.scaling = alpha / r;
        this.dropout = dropout;
        loraA = new Parameter(name + ".lora_A.weight", r, in);
        loraB = new Parameter(name + ".lora_B.weight", out, r);
        // PEFT's default: A ~ kaiming_uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)), B = 0
        double bound = 1.0 / Math.sqrt(in);
        for (int i = 0; i < loraA.size(); i++) loraA.data[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        loraA.setTrainable(true);
        loraB.setTrainable(true);
    }

    private void ensure(int N) {
        if (u.length < N * r) { u = new float[N * r]; du = new float[N * r]; }
    }

    /**
     * Starts a micro-batch whose rows this process computes from token row {@code tokenRowsBefore} of the global
     * micro-batch on: draws the mask seed now (so a rank with no rows keeps its stream in step with the others)
     * and offsets the mask so every rank drops what the one-process run drops for the same rows.
     */
    void beginMicroBatch(long tokenRowsBefore) {
        maskSeed = nextSeed();
        seeded = true;
        maskOffset = tokenRowsBefore * in;
    }

    private long nextSeed() {
        drawn++;
        return maskSeeds.getAsLong();
    }

    long seedsDrawn() { return drawn; }

    /** Advances a fresh layer's mask stream to where a run that drew {@code n} seeds left it (resuming that run). */
    void skipSeeds(long n) {
        if (drawn != 0) throw new IllegalStateException("the mask stream has been drawn from already");
        for (long i = 0; i < n; i++) nextSeed();
    }

    private static final long GOLDEN_GAMMA = 0x9e3779b97f4a7c15L;

    /**
     * The i-th {@code nextDouble()} of {@code new SplittableRandom(seed)} (counting from 0), computed directly:
     * SplitMix64 advances its state by a fixed gamma and mixes it, so any element of the stream can be had without
     * drawing the ones before it. A rank starts its mask in the middle of the global micro-batch's this way.
     */
    static double uniform(long seed, long i) {
        long z = seed + (i + 1) * GOLDEN_GAMMA;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        z ^= z >>> 31;
        return (z >>> 11) * 0x1.0p-53;
    }

    /** xd = x * mask / (1 - p), the mask drawn from the stream of {@code maskSeed}. */
    private float[] dropped(float[] x, int N) {
        float[] xd = scratch.of(N * in);
        float keep = 1f / (1f - dropout);
        for (int i = 0; i < N * in; i++) xd[i] = uniform(maskSeed, maskOffset + i) < dropout ? 0f : x[i] * keep;
        return xd;
    }

    @Override public void forward(float[] y, float[] x, int N) {
        ensure(N);
        float[] src = x;
        droppedLast = dropout > 0 && training;
        if (droppedLast) {
            // inverted dropout on the adapter's input only (PEFT's lora_dropout); the base path sees x
            if (!seeded) { maskSeed = nextSeed(); maskOffset = 0; seeded = true; }
            src = dropped(x, N);
        }
        delta(y, src, 0, N);
    }

    /** y[row0, row0 + N) += scaling * x[row0, row0 + N) @ A^T @ B^T, no dropout: one row block of a mixed batch (see {@link MixedAdapters}). */
    void delta(float[] y, float[] x, int row0, int N) {
        ensure(N);
        Gemm.sgemm(false, true, N, r, in, 1f, x, row0 * in, in, loraA.data, loraA.off, in, 0f, u, 0, r);
        Gemm.sgemm(false, true, N, out, r, scaling, u, 0, r, loraB.data, loraB.off, r, 1f, y, row0 * out, out);
    }

    @Override public void backward(float[] dx, float[] dy, float[] x, int N) {
        float[] src = droppedLast ? dropped(x, N) : x; // the same mask as in forward
        seeded = false; // the micro-batch ends here: the next forward without beginMicroBatch draws a new mask
        // du = scaling * dy @ B ; dB += scaling * dy^T @ u ; dA += du^T @ x'
        Gemm.sgemm(false, false, N, r, out, scaling, dy, 0, out, loraB.data, loraB.off, r, 0f, du, 0, r);
        if (loraB.trainable()) Gemm.sgemm(true, false, out, r, N, scaling, dy, 0, out, u, 0, r, 1f, loraB.grad(), loraB.off, r);
        if (loraA.trainable()) Gemm.sgemm(true, false, r, in, N, 1f, du, 0, r, src, 0, in, 1f, loraA.grad(), loraA.off, in);
        if (!droppedLast) {
            Gemm.sgemm(false, false, N, in, r, 1f, du, 0, r, loraA.data, loraA.off, in, 1f, dx, 0, in);
        } else {
            float[] t = src; // the dropped input is used up: reuse its scratch for du @ A, then mask it again
            Gemm.sgemm(false, false, N, in, r, 1f, du, 0, r, loraA.data, loraA.off, in, 0f, t, 0, in);
            float keep = 1f / (1f - dropout);
            for (int i = 0; i < N * in; i++) if (uniform(maskSeed, maskOffset + i) >= dropout) dx[i] += t[i] * keep;
        }
    }

    /** W[in, out] (Conv1D layout) += scaling * A^T B^T: the same function without the extra matmuls. */
    void mergeInto(Parameter w) {
        w.toHeap();
        Gemm.sgemm(true, true, in, out, r, scaling, loraA.data, loraA.off, in, loraB.data, loraB.off, r, 1f, w.data, w.off, out);
    }
}
