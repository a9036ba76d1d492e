package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.finetune.Finetuner;
import ai.wafer.finetune.Replicas;
import ai.wafer.finetune.TaskData;
import ai.wafer.model.FlatStore;
import ai.wafer.model.Parameter;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * Data-parallel fine-tuning: {@link Finetuner}'s loop on each of p ranks, each holding the whole model (with a
 * PEFT method the frozen base is a read-only mapping of the checkpoint file, so ranks on one machine share one
 * copy in the page cache) and computing rows [r*b/p, (r+1)*b/p) of every global batch of b rows. The global
 * batches are the single-process run's (every rank shuffles with the same seed), each micro-batch's loss is
 * normalised by its global target count (one all-reduce of two doubles), and only the trainable parameters'
 * gradients are summed, bucket by bucket in place (the {@link FlatStore} holds the trainable ones only): LoRA on a large
 * base sends a few MB per step where full fine-tuning sends the whole model.
 *
 * <p>Replicas start identical (same base, same seed for the method's and the head's initialisation) and stay so
 * (the sums are bit-identical on every rank), so each rank evaluates the dev set itself and takes the same
 * best-model and early-stopping decisions without exchanging anything; rank 0 alone writes files. The dev pass
 * is repeated rather than split: the other ranks would otherwise wait for rank 0 anyway.
 */
public final class DataParallelFinetune implements Replicas {
    private final Communicator dp;
    private final FlatStore store;
    private final List<Parameter> params;
    private long mark, lastBytes;

    /** {@code params}: the model's parameters ({@link FinetuneModel#parameters()}); the trainable ones are exchanged. */
    public DataParallelFinetune(Communicator dp, List<Parameter> params, long bucketBytes) {
        this.dp = dp;
        this.params = List.copyOf(params);
        this.store = new FlatStore(params, bucketBytes, dp.size());
        this.mark = dp.bytesSent();
    }

    @Override public List<Batcher.Batch> rows(List<Batcher.Batch> global) {
        int p = dp.size(), r = dp.rank();
        if (p == 1) return global;
        List<Batcher.Batch> out = new ArrayList<>(global.size());
        for (Batcher.Batch b : global) out.add(b.rows(r * b.size() / p, (r + 1) * b.size() / p));
        return out;
    }

    @Override public int firstRow(Batcher.Batch global) { return dp.rank() * global.size() / dp.size(); }

    @Override public void sumLoss(double[] lossAndTargets) {
        if (dp.size() > 1) dp.allReduceSum(lossAndTargets, 0, 2);
    }

    @Override public FlatStore store(List<Parameter> params) {
        if (!params.equals(this.params)) throw new IllegalArgumentException("the store was laid out for other parameters");
        return store;
    }

    @Override public void sumGradients() {
        store.materializeZeros();
        if (dp.size() > 1) for (FlatStore.Bucket b : store.buckets) dp.allReduceSum(store.grads, b.from(), b.length());
        long now = dp.bytesSent();
        lastBytes = now - mark;
        mark = now;
    }

    /** Bytes this rank sent in the last step: the loss statistics and the trainable gradients. */
    public long lastStepBytes() { return lastBytes; }

    /** Trainable elements exchanged per step. */
    public long exchangedElements() { return store.elements; }

    /**
     * A run. {@code model.apply(rank)} gives rank r's model; every rank's must start identical (same base, same
     * method, same seed). {@code out} and {@code log} are rank 0's; {@code opt.batchSize()} is the global batch.
     */
    public record Setup(IntFunction<FinetuneModel> model, TaskData train, TaskData dev, Finetuner.Options opt,
                        Path out, String baseName, PrintWriter log, Duration timeout, Finetuner.Checkpoints checkpoints) {
        public Setup {
            if (timeout == null) timeout = ThreadCommunicator.DEFAULT_TIMEOUT;
        }

        public Setup(IntFunction<FinetuneModel> model, TaskData train, TaskData dev, Finetuner.Options opt, Path out, String baseName,
                     PrintWriter log, Duration timeout) {
            this(model, train, dev, opt, out, baseName, log, timeout, Finetuner.Checkpoints.NONE);
        }
    }

    /** This rank's outcome (rank 0's in a thread job), its model, the bytes it sent in the last step, and whether it is rank 0. */
    public record Result(Finetuner.Result run, FinetuneModel model, long bytesPerStep, boolean lead) {}

    /** dp ranks as threads of this JVM, or, with MPI, this process as one rank of an mpirun job of dp processes. */
    public static Result run(int dp, ParallelPretrain.Engine engine, Setup s) {
        return engine.run(dp, s.timeout(), c -> {
            if (c.size() != dp) throw new WaferException("--parallel dp=" + dp + " but mpirun started " + c.size() + " processes");
            return onRank(c, s);
        });
    }

    /** One rank's part of the run. */
    static Result onRank(Communicator c, Setup s) {
        boolean lead = c.rank() == 0;
        FinetuneModel fm = s.model().apply(c.rank());
        DataParallelFinetune sync = new DataParallelFinetune(c, fm.parameters(), DataParallelTrainer.DEFAULT_BUCKET_BYTES);
        Finetuner.Options o = s.opt();
        if (!lead) // no progress bar but rank 0's
            o = new Finetuner.Options(o.epochs(), o.batchSize(), o.gradAccum(), o.lr(), o.schedule(), o.warmupRatio(), o.minLrRatio(),
                    o.hyper(), o.gradClip(), o.maxLength(), o.evalEvery(), o.patience(), o.seed(), false, o.padding());
        if (lead && s.log() != null)
            s.log().printf("wafer: parallel dp=%d: about %d rows of each global batch of %d per rank; %,d trainable values exchanged per step%n",
                    c.size(), (o.batchSize() + c.size() - 1) / c.size(), o.batchSize(), sync.exchangedElements());
        // every rank restores a resumed checkpoint itself (the same files); rank 0 alone writes them
        Finetuner.Result r = new Finetuner(fm, s.train(), s.dev(), o).replicas(sync).checkpoints(s.checkpoints())
                .run(lead ? s.out() : null, s.baseName(), lead ? s.log() : null);
        c.barrier(); // rank 0's files are complete before any rank returns
        return new Result(r, fm, sync.lastStepBytes(), lead);
    }
}
