package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.model.Activations;
import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;
import ai.wafer.train.LmEval;
import ai.wafer.train.StepEngine;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.TrainCheckpoint;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Training on a dp x tp x pp layout: each rank holds the tensor-parallel shard ({@link Gpt#shard})
 * of one pipeline stage of a replica and the rows [d*B/dp, (d+1)*B/dp) of every global batch. The K
 * micro-batches of a step flow through the stages on the 1F1B schedule: stage s runs pp-s-1 forwards,
 * then alternates one forward with one backward, then drains the backwards, so at most pp-s
 * micro-batches are in flight and the idle share (the bubble) is (pp-1)/(K+pp-1). Activations go
 * forward and their gradients back by send/recv.
 *
 * <p>After the step's micro-batches, gradients are summed over the data-parallel group (bucketed, as in
 * {@link DataParallelTrainer}), a tied embedding's two copies (first and last stage) are summed, the
 * clipping norm is assembled from the pieces (sharded tensors summed over the tensor group, replicated
 * ones once, stages summed), and each rank updates its own shard with AdamW. The result equals the
 * single-process {@link Pretrainer} on the same global batch. With ZeRO-1 the gradients are
 * reduce-scattered over dp instead, each data-parallel rank keeps moments for and updates only its
 * chunk of its shard, and the weights are all-gathered.
 *
 * <p>Checkpoints are the single-process form: {@link #save} assembles the weights and moments from the
 * shards (and ZeRO chunks), {@link #resume} cuts them again for this rank, so any layout continues any
 * other's checkpoint. As a {@link StepEngine} it runs under {@link Pretrainer}'s loop like the one-process step.
 */
public final class ParallelTrainer implements StepEngine {
    private final Layout layout;
    private final Layout.Groups g;
    private final Gpt model;
    private final TokenLoader data;
    private final Pretrainer.Options opt;
    private final FlatStore store;
    private final boolean zero;
    private final AdamW adamw; // without ZeRO: AdamW over this rank's shard
    private final Zero1 zero1; // with ZeRO-1: this rank's chunks of its shard
    private final Activations[] acts; // one per micro-batch in flight on this stage
    private final int[] x, y;
    private final int[][] lx, ly;
    private final float[] actIn, gradIn;
    private final Communicator embedGroup;
    private final boolean tiedCopies;
    private final double[] lossParts, sq = new double[1], sq2 = new double[2];
    private int step;
    private long lastBytes;

    public ParallelTrainer(Layout layout, Layout.Groups groups, Gpt full, TokenLoader data, Pretrainer.Options opt) {
        this(layout, groups, full, data, opt, false, DataParallelTrainer.DEFAULT_BUCKET_BYTES);
    }

    /**
     * With {@code zero1} (and dp > 1) the AdamW moments are sharded over the data-parallel group as in
     * {@link DataParallelTrainer}: rank d of dp owns chunk d of every gradient bucket of its shard.
     */
    public ParallelTrainer(Layout layout, Layout.Groups groups, Gpt full, TokenLoader data, Pretrainer.Options opt,
                           boolean zero1, long bucketBytes) {
        int B = opt.batchSize(), T = opt.seqLen(), L = full.config.nLayer(), P = layout.pp();
        if (L < P) throw new WaferException("pp=" + P + " needs at least as many layers; the model has " + L);
        if (B % layout.dp() != 0) throw new WaferException("--batch-size " + B + " must be a multiple of dp=" + layout.dp());
        if (data.batchSize() != B || data.seqLen() != T)
            throw new WaferException("the token loader gives " + data.batchSize() + " x " + data.seqLen() + " batches; the run needs the global " + B + " x " + T);
        this.layout = layout;
        this.g = groups;
        this.data = data;
        this.opt = opt;
        int stage = groups.pp().rank();
        model = Gpt.shard(full, groups.tp(), Plan.firstLayer(L, P, stage), Plan.firstLayer(L, P, stage + 1));
        // the stages holding the tied embedding's two copies sum their gradients in a group of their own
        boolean tiedEnd = P > 1 && full.config.tieWordEmbeddings() && (model.firstStage() || model.lastStage());
        embedGroup = P > 1 ? groups.pp().split(tiedEnd ? 0 : 1, stage) : null;
        tiedCopies = tiedEnd;
        store = new FlatStore(model.parameters(), bucketBytes, groups.dp().size());
        zero = zero1 && groups.dp().size() > 1;
        adamw = zero ? null : new AdamW(model.parameters(), opt.hyper());
        this.zero1 = zero ? new Zero1(groups.dp(), store, opt.hyper()) : null;
        int Bl = B / layout.dp(), K = opt.gradAccum();
        acts = new Activations[Math.min(K, P - stage)];
        for (int i = 0; i < acts.length; i++) acts[i] = model.newActs(Bl, T);
        x = new int[B * T];
        y = new int[B * T];
        lx = new int[K][Bl * T];
        ly = new int[K][Bl * T];
        actIn = new float[Bl * T * full.config.nEmbd()];
        gradIn = new float[Bl * T * full.config.nEmbd()];
        lossParts = new double[2 * K];
    }

    public Gpt model() { return model; }
    @Override public Pretrainer.Options options() { return opt; }
    @Override public int step() { return step; }
    @Override public boolean writes() { return g.world().rank() == 0; }

    @Override public boolean anyStop(boolean here) { return DataParallelTrainer.anyStop(g.world(), here); }
    public boolean zero() { return zero; }
    /** Floats of optimiser state held by this rank. */
    public long optimizerStateFloats() { return DataParallelTrainer.stateFloats(adamw, zero1); }
    /** Bytes this rank sent in the last step, over all its groups. */
    @Override public long lastStepBytes() { return lastBytes; }

    private long sent() { return g.dp().bytesSent() + g.tp().bytesSent() + g.pp().bytesSent(); }

    @Override public Pretrainer.StepResult trainStep() {
        long t0 = System.nanoTime(), b0 = sent();
        int B = opt.batchSize(), T = opt.seqLen(), K = opt.gradAccum(), Bl = B / layout.dp(), d = g.dp().rank();
        model.zeroGrad();
        for (int k = 0; k < K; k++) {
            data.nextBatch(x, y);
            System.arraycopy(x, d * Bl * T, lx[k], 0, Bl * T);
            System.arraycopy(y, d * Bl * T, ly[k], 0, Bl * T);
        }
        java.util.Arrays.fill(lossParts, 0);
        // 1F1B: warm up with pp-s-1 forwards, then one forward and one backward, then drain
        float scale = 1f / ((float) K * B * T);
        int s = g.pp().rank(), P = layout.pp(), warm = Math.min(P - s - 1, K), f = 0, b = 0;
        for (; f < warm; f++) forward(f);
        while (b < K) {
            if (f < K) forward(f++);
            backward(b++, scale);
        }
        g.dp().allReduceSum(lossParts, 0, lossParts.length);
        if (P > 1) g.pp().allReduceSum(lossParts, 0, lossParts.length); // only the last stage has losses
        double loss = 0;
        for (int k = 0; k < K; k++) loss += lossParts[2 * k + 1] == 0 ? 0 : lossParts[2 * k] / lossParts[2 * k + 1];
        float lr = opt.schedule().at(step);
        double norm = zero ? zeroStep(lr) : allReduceStep(lr);
        lastBytes = sent() - b0;
        step++;
        return new Pretrainer.StepResult(step, (float) (loss / K), lr, norm, (System.nanoTime() - t0) / 1e9, (long) K * B * T);
    }

    private double allReduceStep(float lr) {
        store.materializeZeros();
        if (g.dp().size() > 1) for (FlatStore.Bucket b : store.buckets) g.dp().allReduceSum(store.grads, b.from(), b.length());
        sumTiedCopies();
        double norm = Math.sqrt(squaredNorm());
        adamw.apply(lr, AdamW.clipScale(norm, opt.gradClip()));
        return norm;
    }

    private void sumTiedCopies() {
        if (!tiedCopies) return;
        Parameter w = model.firstStage() ? model.tokenEmbedding() : model.headWeight();
        embedGroup.allReduceSum(w.grad(), w.off, w.size());
    }

    /**
     * ZeRO-1 on this rank's shard: reduce-scatter each bucket over dp, AdamW on the owned chunk, all-gather
     * the updated weights. The tied copies are summed first (a sum commutes with the one over dp, and both
     * copies then see the same reduce-scatter, so they stay bit-identical). The norm's pieces come from
     * the owned chunks, summed over dp and then combined as {@link #squaredNorm} does.
     */
    private double zeroStep(float lr) {
        sumTiedCopies();
        zero1.reduceScatter();
        double[] parts = sq2; // [sharded, replicated]
        parts[0] = parts[1] = 0;
        zero1.forOwned((p, gr, from, to) -> {
            if (model.isTiedHeadCopy(p)) return;
            double s = 0;
            for (int j = from; j < to; j++) s += (double) gr[j] * gr[j];
            parts[model.isReplicated(p) ? 1 : 0] += s;
        });
        g.dp().allReduceSum(parts, 0, 2);
        double norm = Math.sqrt(combine(parts[0], parts[1]));
        zero1.update(lr, AdamW.clipScale(norm, opt.gradClip()));
        return norm;
    }

    /** The pipeline's tag for evaluation activations, apart from training's 2*mb and 2*mb+1. */
    private static final int EVAL_TAG = 1 << 14;

    /**
     * The held-out loss of {@link LmEval#fixed} on the global batches: a forward-only pass through the stages
     * (each data-parallel replica scores its rows), token losses summed as in training's loss.
     */
    @Override public double evalLoss(TokenLoader eval, int batches) {
        int B = opt.batchSize(), T = opt.seqLen(), Bl = B / layout.dp(), d = g.dp().rank(), s = g.pp().rank(), n = actIn.length;
        if (eval.batchSize() != B || eval.seqLen() != T)
            throw new WaferException("the eval loader gives " + eval.batchSize() + " x " + eval.seqLen() + " batches; the run needs " + B + " x " + T);
        LmEval.rewind(eval);
        Activations a = acts[0];
        double[] sums = new double[2]; // loss summed over tokens, tokens (only the last stage has them)
        for (int i = 0; i < batches; i++) {
            eval.nextBatch(x, y);
            System.arraycopy(x, d * Bl * T, lx[0], 0, Bl * T);
            System.arraycopy(y, d * Bl * T, ly[0], 0, Bl * T);
            float[] in = null;
            if (!model.firstStage()) {
                g.pp().recv(actIn, 0, n, s - 1, EVAL_TAG);
                in = actIn;
            }
            model.forward(a, lx[0], in, ly[0]);
            if (model.lastStage()) {
                sums[0] += a.lossSum();
                sums[1] += a.validTargets();
            } else {
                g.pp().send(a.output(), 0, n, s + 1, EVAL_TAG);
            }
        }
        g.dp().allReduceSum(sums, 0, 2);
        if (layout.pp() > 1) g.pp().allReduceSum(sums, 0, 2);
        return sums[0] / sums[1];
    }

    private int slot(int mb) { return mb % acts.length; }

    private void forward(int mb) {
        Activations a = acts[slot(mb)];
        int s = g.pp().rank(), n = actIn.length;
        float[] in = null;
        if (!model.firstStage()) {
            g.pp().recv(actIn, 0, n, s - 1, 2 * mb);
            in = actIn;
        }
        model.forward(a, lx[mb], in, ly[mb]);
        if (model.lastStage()) {
            lossParts[2 * mb] = a.lossSum();
            lossParts[2 * mb + 1] = a.validTargets();
        } else {
            g.pp().send(a.output(), 0, n, s + 1, 2 * mb);
        }
    }

    private void backward(int mb, float scale) {
        Activations a = acts[slot(mb)];
        int s = g.pp().rank(), n = gradIn.length;
        float[] dout = null;
        if (!model.lastStage()) {
            g.pp().recv(gradIn, 0, n, s + 1, 2 * mb + 1);
            dout = gradIn;
        }
        model.backward(a, dout, scale);
        if (!model.firstStage()) g.pp().send(model.inputGradient(), 0, n, s - 1, 2 * mb + 1);
    }

    /** The pipeline's idle share under 1F1B with K micro-batches: (pp-1)/(K+pp-1). */
    public double bubbleFraction() { return (layout.pp() - 1.0) / (opt.gradAccum() + layout.pp() - 1.0); }

    /**
     * The whole model's squared gradient norm: shards summed over the tensor group, replicated tensors
     * once, stages summed (a tied head copy is the first stage's embedding: not counted twice).
     */
    private double squaredNorm() {
        double sharded = 0, replicated = 0;
        for (Parameter p : model.parameters()) {
            if (model.isTiedHeadCopy(p)) continue;
            double s = AdamW.squaredSum(p.grad(), p.off, p.size());
            if (model.isReplicated(p)) replicated += s; else sharded += s;
        }
        return combine(sharded, replicated);
    }

    /** The whole model's squared norm from this rank's sums over its sharded and its replicated tensors. */
    private double combine(double sharded, double replicated) {
        sq[0] = sharded;
        if (g.tp().size() > 1) g.tp().allReduceSum(sq, 0, 1);
        sq[0] += replicated;
        if (layout.pp() > 1) g.pp().allReduceSum(sq, 0, 1);
        return sq[0];
    }

    /** The whole model, assembled on every rank (for checkpoints and checks). */
    public Gpt gather() {
        Gpt full = new Gpt(model.config);
        model.gather(full, g.pp());
        return full;
    }

    /**
     * Saves a one-rank checkpoint under runDir, the form {@link Pretrainer} writes: the shards of the
     * weights and of both AdamW moments (cut exactly like the weights) are assembled into whole tensors,
     * so the checkpoint resumes on any layout or on one process. Every rank must call it; the replicas
     * of a data-parallel group are identical, so only the first assembles its model, and world rank 0
     * (in that replica) writes. Returns the checkpoint directory.
     */
    @Override public Path save(Path runDir) {
        TrainCheckpoint.State st = new TrainCheckpoint.State(step, data.state(), opt);
        Path dir = TrainCheckpoint.dirFor(runDir, step);
        List<float[]> lm, lv;
        if (zero) { // this shard's whole moments first, from the chunks over dp (every dp rank takes part)
            lm = shapedLikeParameters();
            lv = shapedLikeParameters();
            zero1.gather(model.parameters(), lm, lv);
        } else {
            lm = adamw.firstMoments();
            lv = adamw.secondMoments();
        }
        if (g.dp().rank() == 0) {
            Gpt full = new Gpt(model.config);
            AdamW whole = new AdamW(full.parameters(), opt.hyper()); // every parameter of a fresh Gpt is trainable
            model.gather(full, g.pp());
            model.gather(full, lm, whole.firstMoments(), g.pp());
            model.gather(full, lv, whole.secondMoments(), g.pp());
            whole.setStepCount(zero ? zero1.steps() : adamw.stepCount());
            if (g.world().rank() == 0) dir = TrainCheckpoint.save(runDir, full, whole, st);
        }
        g.world().barrier(); // nobody reads it before it is complete
        return dir;
    }

    /**
     * Continues from a one-rank checkpoint (written by {@link Pretrainer}, {@link DataParallelTrainer} or
     * {@link #save} on any layout): world rank 0 reads it, every rank receives it and keeps its own slices of the
     * weights and moments.
     */
    @Override public void resume(Path checkpoint) {
        Gpt full = new Gpt(model.config);
        AdamW whole = new AdamW(full.parameters(), opt.hyper());
        TrainCheckpoint.State st = DataParallelTrainer.loadOnRank0(g.world(), checkpoint, full, whole).requireShape(checkpoint, opt);
        model.load(full);
        List<float[]> lm = zero ? shapedLikeParameters() : adamw.firstMoments(), lv = zero ? shapedLikeParameters() : adamw.secondMoments();
        model.scatter(full, whole.firstMoments(), lm);
        model.scatter(full, whole.secondMoments(), lv);
        if (zero) zero1.scatter(model.parameters(), lm, lv, whole.stepCount());
        else adamw.setStepCount(whole.stepCount());
        data.restore(st.data());
        step = st.step();
    }

    private List<float[]> shapedLikeParameters() {
        List<float[]> out = new ArrayList<>();
        for (Parameter p : model.parameters()) out.add(new float[p.size()]);
        return out;
    }
}
