package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.model.CrossEntropy;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.train.Pretrainer;

import java.util.ArrayList;
import java.util.List;

/**
 * Training on a dp x tp layout: each rank holds the tensor-parallel shard {@link TensorParallelGpt}
 * of a replica and the rows [d*B/dp, (d+1)*B/dp) of every global batch. After the K micro-batches,
 * gradients are summed over the data-parallel group (bucketed, as in {@link DataParallelTrainer}),
 * the clipping norm is assembled from the shards (sharded tensors summed over the tensor group,
 * replicated ones counted once), and each rank updates its own shard with AdamW. The result equals
 * the single-process {@link Pretrainer} on the same global batch.
 */
public final class ParallelTrainer {
    private final Layout layout;
    private final Layout.Groups g;
    private final TensorParallelGpt model;
    private final TokenLoader data;
    private final Pretrainer.Options opt;
    private final GradBuckets buckets;
    private final List<float[]> m = new ArrayList<>(), v = new ArrayList<>();
    private final TensorParallelGpt.Acts acts;
    private final int[] x, y, lx, ly;
    private final double[] lossParts, sq = new double[1];
    private long adamSteps;
    private int step;
    private long lastBytes;

    public ParallelTrainer(Layout layout, Layout.Groups groups, Gpt full, TokenLoader data, Pretrainer.Options opt) {
        if (layout.pp() > 1) throw new WaferException("--parallel " + layout + ": pipeline stages are not supported by this trainer");
        int B = opt.batchSize(), T = opt.seqLen();
        if (B % layout.dp() != 0) throw new WaferException("--batch-size " + B + " must be a multiple of dp=" + layout.dp());
        if (data.batchSize() != B || data.seqLen() != T)
            throw new WaferException("the token loader gives " + data.batchSize() + " x " + data.seqLen() + " batches; the run needs the global " + B + " x " + T);
        this.layout = layout;
        this.g = groups;
        this.data = data;
        this.opt = opt;
        model = new TensorParallelGpt(full, groups.tp(), 0, full.config.nLayer());
        buckets = new GradBuckets(model.parameters(), DataParallelTrainer.DEFAULT_BUCKET_BYTES, groups.dp().size());
        for (Parameter p : model.parameters()) {
            m.add(new float[p.size()]);
            v.add(new float[p.size()]);
        }
        int Bl = B / layout.dp();
        acts = model.newActs(Bl, T);
        x = new int[B * T];
        y = new int[B * T];
        lx = new int[Bl * T];
        ly = new int[Bl * T];
        lossParts = new double[2 * opt.gradAccum()];
    }

    public TensorParallelGpt model() { return model; }
    public int step() { return step; }
    /** Bytes this rank sent in the last step, over all its groups. */
    public long lastStepBytes() { return lastBytes; }

    private long sent() { return g.dp().bytesSent() + g.tp().bytesSent() + g.pp().bytesSent(); }

    public Pretrainer.StepResult trainStep() {
        long t0 = System.nanoTime(), b0 = sent();
        int B = opt.batchSize(), T = opt.seqLen(), K = opt.gradAccum(), Bl = B / layout.dp(), d = g.dp().rank();
        model.zeroGrad();
        for (int k = 0; k < K; k++) {
            data.nextBatch(x, y);
            System.arraycopy(x, d * Bl * T, lx, 0, Bl * T);
            System.arraycopy(y, d * Bl * T, ly, 0, Bl * T);
            model.forward(acts, lx, null, ly);
            lossParts[2 * k] = acts.lossSum;
            lossParts[2 * k + 1] = acts.valid;
            model.backward(acts, null, 1f / ((float) K * B * T));
        }
        g.dp().allReduceSum(lossParts, 0, lossParts.length);
        double loss = 0;
        for (int k = 0; k < K; k++) loss += lossParts[2 * k + 1] == 0 ? 0 : lossParts[2 * k] / lossParts[2 * k + 1];
        if (g.dp().size() > 1) {
            for (GradBuckets.Bucket b : buckets.buckets) {
                b.packGrads();
                g.dp().allReduceSum(b.flat, 0, b.length);
                b.unpackGrads();
            }
        }
        double norm = Math.sqrt(squaredNorm());
        float lr = opt.schedule().at(step);
        float gscale = AdamWMath.clipScale(norm, opt.gradClip());
        adamSteps++;
        List<Parameter> ps = model.parameters();
        for (int i = 0; i < ps.size(); i++) {
            Parameter p = ps.get(i);
            AdamWMath.update(p.data, 0, p.grad(), 0, m.get(i), v.get(i), 0, p.size(), lr, p.decays(), gscale, opt.hyper(), adamSteps);
        }
        lastBytes = sent() - b0;
        step++;
        return new Pretrainer.StepResult(step, (float) (loss / K), lr, norm, (System.nanoTime() - t0) / 1e9, (long) K * B * T);
    }

    /** The whole model's squared gradient norm: shards summed over the tensor group, replicated tensors once. */
    private double squaredNorm() {
        double sharded = 0, replicated = 0;
        for (Parameter p : model.parameters()) {
            double s = 0;
            for (float gi : p.grad()) s += (double) gi * gi;
            if (model.isReplicated(p)) replicated += s; else sharded += s;
        }
        sq[0] = sharded;
        if (g.tp().size() > 1) g.tp().allReduceSum(sq, 0, 1);
        return sq[0] + replicated;
    }

    /** The whole model, assembled on every rank (for checkpoints and checks). */
    public Gpt gather() {
        Gpt full = new Gpt(model.config);
        model.gather(full, g.pp());
        return full;
    }

    /** Rows of the local batch a rank takes, for tests. */
    static boolean anyValid(int[] y) {
        for (int t : y) if (!CrossEntropy.ignored(t)) return true;
        return false;
    }
}
