package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.model.CrossEntropy;
import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;
import ai.wafer.train.LmEval;
import ai.wafer.train.StepEngine;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.TrainCheckpoint;

import java.nio.file.Path;
import java.util.List;

/**
 * Data-parallel training: each of the p ranks of {@code dp} holds a whole replica and takes rows
 * [r*B/p, (r+1)*B/p) of every global batch of B rows, so a step sees exactly the batch the
 * single-process {@link Pretrainer} sees. Each rank's backward scales by 1/(K*B*T) for the global
 * token count, so summing the ranks' gradients gives the single-process gradient; the sums run bucket
 * by bucket, in place in the {@link FlatStore}'s gradient buffer, each started on a comm thread as soon as backward has
 * finished that bucket's layers ({@link Gpt#onGradientsReady}), so the exchange of the upper layers' gradients
 * overlaps the backward of the lower ones (PyTorch DDP's scheme). The sums are the same either way.
 *
 * <p>With ZeRO-1 the optimiser moments are sharded: gradients are reduce-scattered instead of
 * all-reduced, each rank updates only the chunk of each bucket it owns (the global clipping norm is
 * one all-reduced double), and the updated parameters are all-gathered. Same volume as an all-reduce,
 * moments cut by p.
 *
 * <p>Every rank reads the whole global batch from its own loader (memory-mapped, so cheap) and keeps
 * its rows; the loader position is then the same on every rank and checkpoints are the single-process
 * format: a checkpoint saved here resumes on any number of ranks, or in {@link Pretrainer}. As a
 * {@link StepEngine} it runs under {@link Pretrainer}'s loop like the one-process step.
 */
public final class DataParallelTrainer implements StepEngine {
    /** Default bucket size: large enough for bandwidth, small enough to pipeline (PyTorch DDP's 25 MB). */
    public static final long DEFAULT_BUCKET_BYTES = 25L << 20;

    private final Communicator dp;
    private final Gpt model;
    private final TokenLoader data;
    private final Pretrainer.Options opt;
    private final boolean zero;
    private final FlatStore store;
    private final AdamW adamw;  // without ZeRO: the full optimiser, identical on every rank
    private final Zero1 zero1;  // with ZeRO: this rank's chunks
    private final AdamW.Hyper hyper;
    private final int[] x, y, lx, ly;
    private final double[] lossParts, sq = new double[1];
    private int step;
    private long lastBytes;

    public DataParallelTrainer(Communicator dp, Gpt model, TokenLoader data, Pretrainer.Options opt, boolean zero1, long bucketBytes) {
        int p = dp.size(), B = opt.batchSize(), T = opt.seqLen();
        if (B % p != 0) throw new WaferException("--batch-size " + B + " must be a multiple of dp=" + p + " (each rank takes B/dp rows)");
        if (data.batchSize() != B || data.seqLen() != T)
            throw new WaferException("the token loader gives " + data.batchSize() + " x " + data.seqLen() + " batches; the run needs the global " + B + " x " + T);
        this.dp = dp;
        this.model = model;
        this.data = data;
        this.opt = opt;
        this.zero = zero1 && p > 1;
        this.hyper = opt.hyper();
        this.store = new FlatStore(model.parameters(), bucketBytes, p);
        this.adamw = zero ? null : new AdamW(model.parameters(), opt.hyper());
        this.zero1 = zero ? new Zero1(dp, store, opt.hyper()) : null;
        int nb = store.buckets.size();
        x = new int[B * T];
        y = new int[B * T];
        lx = new int[B / p * T];
        ly = new int[B / p * T];
        lossParts = new double[2 * opt.gradAccum()];
        readyAt = new int[nb];
        for (int i = 0; i < nb; i++) {
            int lo = Integer.MAX_VALUE;
            FlatStore.Bucket b = store.buckets.get(i);
            for (int q = b.first(); q < b.end(); q++) lo = Math.min(lo, model.layerOf(store.params.get(q)));
            readyAt[i] = lo;
        }
        pending = new java.util.concurrent.Future<?>[nb];
    }

    /** Per bucket: the layer after whose backward all its gradients are final (its parameters' lowest layer). */
    private final int[] readyAt;
    private final java.util.concurrent.Future<?>[] pending;
    private int nextBucket;
    /**
     * The thread that all-reduces buckets while backward goes on (one per trainer, started on first use). Collectives
     * stay in one order on every rank: buckets in backward order, then the loss statistics after all of them.
     */
    private java.util.concurrent.ExecutorService comm;

    /** Called by the model's backward (last micro-batch): starts the all-reduce of every bucket that has become final. */
    private void gradientsReady(int layer) {
        while (nextBucket < readyAt.length && readyAt[nextBucket] >= layer) {
            FlatStore.Bucket b = store.buckets.get(nextBucket); // its gradients are final: summed in place
            store.materializeZeros(b.first(), b.end()); // a parameter no backward wrote this step counts zero
            pending[nextBucket++] = comm.submit(() -> dp.allReduceSum(store.grads, b.from(), b.length()));
        }
    }

    /**
     * Seconds the training thread spent waiting for communication in the last step: for the overlapped buckets,
     * only what was still running when backward ended (the exchange hidden behind backward does not count); for
     * everything else (loss statistics, ZeRO's collectives), the whole collective.
     */
    public double lastExposedCommSeconds() { return exposedNanos / 1e9; }

    private long exposedNanos;

    /** Waits for every bucket's all-reduce. */
    private void finishBuckets() {
        for (int i = 0; i < pending.length; i++) {
            try {
                pending[i].get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof RuntimeException re) throw re;
                throw new WaferException("all-reduce of gradient bucket " + i + " failed: " + e.getCause(), e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new WaferException("interrupted while exchanging gradients");
            }
            pending[i] = null;
        }
    }

    public Gpt model() { return model; }
    @Override public Pretrainer.Options options() { return opt; }
    @Override public int step() { return step; }
    @Override public boolean writes() { return dp.rank() == 0; }

    @Override public boolean anyStop(boolean here) { return anyStop(dp, here); }
    public boolean zero() { return zero; }
    /** Bytes this rank sent in the last step (gradients, loss statistics, and with ZeRO the parameters). */
    @Override public long lastStepBytes() { return lastBytes; }
    /** Floats of optimiser state held by this rank. */
    public long optimizerStateFloats() { return stateFloats(adamw, zero1); }

    /** Whether {@code here} holds on any rank of {@code c}, so that all stop at the same step. */
    static boolean anyStop(Communicator c, boolean here) {
        double[] flag = {here ? 1 : 0};
        c.allReduceSum(flag, 0, 1);
        return flag[0] > 0;
    }

    /**
     * {@link TrainCheckpoint#load} on rank 0 of {@code c} alone (on separate machines the checkpoint is on its disk only);
     * the other ranks receive the weights, moments and state from it. Each value travels as rank 0's value plus -0.0
     * from every other rank, an exact broadcast (x + -0.0 is x for every float, signed zeros included); longs go
     * as two 32-bit halves, exact in a double.
     */
    static TrainCheckpoint.State loadOnRank0(Communicator c, Path ckpt, Gpt model, AdamW opt) {
        boolean root = c.rank() == 0;
        TrainCheckpoint.State st = root ? TrainCheckpoint.load(ckpt, model, opt) : null;
        if (c.size() == 1) return st;
        List<float[]> arrays = new java.util.ArrayList<>(opt.firstMoments());
        arrays.addAll(opt.secondMoments());
        for (Parameter p : model.parameters()) broadcast(c, root, p.data, p.off, p.size());
        for (float[] a : arrays) broadcast(c, root, a, 0, a.length);
        TokenLoader.State d = root ? st.data() : null;
        long[] v = root ? new long[]{st.step(), opt.stepCount(), d.rows(), d.tokens(), d.seqLen(), d.shuffled(), d.seed(),
                st.batchSize(), st.seqLen(), st.gradAccum()} : new long[10];
        double[] halves = new double[2 * v.length];
        for (int i = 0; i < v.length; i++) { halves[2 * i] = root ? v[i] >> 32 : -0.0; halves[2 * i + 1] = root ? v[i] & 0xffffffffL : -0.0; }
        c.allReduceSum(halves, 0, halves.length);
        for (int i = 0; i < v.length; i++) v[i] = (long) halves[2 * i] << 32 | (long) halves[2 * i + 1];
        opt.setStepCount(v[1]);
        return new TrainCheckpoint.State((int) v[0], new TokenLoader.State(v[2], v[3], v[4], v[5], v[6]), (int) v[7], (int) v[8], (int) v[9]);
    }

    private static void broadcast(Communicator c, boolean root, float[] a, int off, int len) {
        if (!root) java.util.Arrays.fill(a, off, off + len, -0f);
        c.allReduceSum(a, off, len);
    }

    /** Optimiser floats this rank holds: its ZeRO-1 chunks (zero1 not null), else both moments of what adamw updates. */
    static long stateFloats(AdamW adamw, Zero1 zero1) {
        if (zero1 != null) return zero1.stateFloats();
        long n = 0;
        for (float[] a : adamw.firstMoments()) n += 2L * a.length;
        return n;
    }

    /** One optimiser step over K micro-batches of the global batch; the result is the same on every rank. */
    @Override public Pretrainer.StepResult trainStep() {
        long t0 = System.nanoTime();
        int p = dp.size(), r = dp.rank(), B = opt.batchSize(), T = opt.seqLen(), K = opt.gradAccum(), Bl = B / p;
        long b0 = dp.bytesSent(); // the gradient buckets go out during backward
        long exposed = 0;
        model.zeroGrad();
        for (int k = 0; k < K; k++) {
            data.nextBatch(x, y);
            System.arraycopy(x, r * Bl * T, lx, 0, Bl * T);
            System.arraycopy(y, r * Bl * T, ly, 0, Bl * T);
            float mean = model.forward(lx, ly, Bl, T);
            int valid = 0;
            for (int i = 0; i < Bl * T; i++) if (!CrossEntropy.ignored(ly[i])) valid++;
            lossParts[2 * k] = (double) mean * valid;
            lossParts[2 * k + 1] = valid;
            // On the last micro-batch each bucket is all-reduced as soon as backward has finished its gradients,
            // on the comm thread, overlapping the exchange with the backward of the layers below it.
            boolean overlap = k == K - 1 && !zero && p > 1;
            if (overlap) {
                if (comm == null) comm = java.util.concurrent.Executors.newSingleThreadExecutor(rn -> {
                    Thread th = new Thread(rn, "wafer-dp-comm-" + r);
                    th.setDaemon(true);
                    return th;
                });
                nextBucket = 0;
                model.onGradientsReady(this::gradientsReady);
            }
            try {
                model.backward(1f / ((float) K * B * T));
            } finally {
                if (overlap) model.onGradientsReady(null);
            }
            if (overlap) {
                gradientsReady(Integer.MIN_VALUE); // any bucket still waiting (none when backward reached the embeddings)
                long w = System.nanoTime();
                finishBuckets();
                exposed += System.nanoTime() - w;
            }
        }
        long w = System.nanoTime();
        dp.allReduceSum(lossParts, 0, lossParts.length);
        exposed += System.nanoTime() - w;
        double loss = 0;
        for (int k = 0; k < K; k++) loss += lossParts[2 * k + 1] == 0 ? 0 : lossParts[2 * k] / lossParts[2 * k + 1];
        float lr = opt.schedule().at(step);
        w = System.nanoTime();
        double norm = zero ? zeroStep(lr) : adamw.step(lr, opt.gradClip()); // without ZeRO the gradients were summed during backward
        if (zero) exposed += System.nanoTime() - w; // ZeRO's collectives (and its chunk updates) block the step
        exposedNanos = exposed;
        lastBytes = dp.bytesSent() - b0;
        step++;
        return new Pretrainer.StepResult(step, (float) (loss / K), lr, norm, (System.nanoTime() - t0) / 1e9, (long) K * B * T);
    }

    /**
     * The held-out loss of {@link LmEval#fixed} on the global batches: the replicas are identical, so each
     * rank scores its rows of every batch and the sums are added over dp.
     */
    @Override public double evalLoss(TokenLoader eval, int batches) {
        int p = dp.size(), r = dp.rank(), B = eval.batchSize(), T = eval.seqLen(), Bl = B / p;
        if (B % p != 0) throw new WaferException("the eval batch of " + B + " rows does not split over dp=" + p);
        LmEval.rewind(eval);
        int[] ex = new int[B * T], ey = new int[B * T], rx = new int[Bl * T], ry = new int[Bl * T];
        double[] sums = new double[2]; // loss summed over tokens, tokens
        for (int i = 0; i < batches; i++) {
            eval.nextBatch(ex, ey);
            System.arraycopy(ex, r * Bl * T, rx, 0, Bl * T);
            System.arraycopy(ey, r * Bl * T, ry, 0, Bl * T);
            sums[0] += (double) model.forward(rx, ry, Bl, T) * rx.length;
            sums[1] += rx.length;
        }
        dp.allReduceSum(sums, 0, 2);
        return sums[0] / sums[1];
    }

    /** ZeRO-1: reduce-scatter, the global norm from the owned chunks, AdamW there, all-gather. */
    private double zeroStep(float lr) {
        zero1.reduceScatter();
        double[] s = sq;
        s[0] = 0;
        zero1.forOwned((p, g, from, to) -> s[0] += AdamW.squaredSum(g, from, to - from));
        dp.allReduceSum(s, 0, 1);
        double norm = Math.sqrt(s[0]);
        zero1.update(lr, AdamW.clipScale(norm, opt.gradClip()));
        return norm;
    }

    /**
     * Saves a single-process checkpoint (parameters, full moments, step, data position) under runDir;
     * every rank must call it, rank 0 writes. Returns the checkpoint directory.
     */
    @Override public Path save(Path runDir) {
        AdamW full = adamw;
        if (zero) {
            full = new AdamW(model.parameters(), hyper);
            full.setStepCount(zero1.steps());
            zero1.gather(full.parameters(), full.firstMoments(), full.secondMoments());
        }
        TrainCheckpoint.State st = new TrainCheckpoint.State(step, data.state(), opt);
        Path dir = dp.rank() == 0 ? TrainCheckpoint.save(runDir, model, full, st) : TrainCheckpoint.dirFor(runDir, step);
        dp.barrier(); // nobody reads it before it is complete
        return dir;
    }

    /** Continues from a checkpoint saved by any layout (or by {@link Pretrainer}): rank 0 reads it, the others receive it. */
    @Override public void resume(Path checkpoint) {
        AdamW full = zero ? new AdamW(model.parameters(), hyper) : adamw;
        TrainCheckpoint.State st = loadOnRank0(dp, checkpoint, model, full).requireShape(checkpoint, opt);
        data.restore(st.data());
        step = st.step();
        if (zero) zero1.scatter(full.parameters(), full.firstMoments(), full.secondMoments(), full.stepCount());
    }
}
