package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.model.FlatStore;
import ai.wafer.model.Parameter;

import java.util.List;

/**
 * The seam between {@link Finetuner}'s loop and data parallelism: which rows of every global batch this
 * process computes, and the sums over the processes that compute the others. {@link #ONE} is the
 * single-process run (all rows, nothing to sum); {@code ai.wafer.parallel.DataParallelFinetune} is dp=N.
 * Every rank walks the same global batches in the same order, so the step count, learning rate and
 * dev evaluations are the same everywhere.
 */
public interface Replicas {
    Replicas ONE = new Replicas() {};

    /** This rank's share of each of an epoch's global batches (same count, same order; a share may have 0 rows). */
    default List<Batcher.Batch> rows(List<Batcher.Batch> global) { return global; }

    /** The index of this rank's first row in {@code global} (one of the batches given to {@link #rows}). */
    default int firstRow(Batcher.Batch global) { return 0; }

    /**
     * {@code lossAndTargets} = [summed loss, valid targets] of this rank's rows of one micro-batch; afterwards, the
     * sums over ranks, i.e. the global micro-batch's. Each rank then scales its backward by the global count, so the
     * summed gradient is the single-process one.
     */
    default void sumLoss(double[] lossAndTargets) {}

    /** The flat store of the trainable parameters in this layout (one bucket here; bucketed for the exchange with dp). */
    default FlatStore store(List<Parameter> params) { return FlatStore.of(params); }

    /** After the backward passes of a step, before clipping and the optimiser: every trainable gradient summed over ranks. */
    default void sumGradients() {}
}
