package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.train.TrainingChecks;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * Experience replay for continual learning: every training batch of the new task holds {@code round(ratio x batch size)}
 * examples of an earlier task's data ({@code earlier}, encoded with the model's labels) besides the new task's. Epochs
 * count the new task's examples; the earlier examples come in the order of a shuffle seeded by the run's seed and the
 * epoch, batch k taking the next {@code perBatch} of them (wrapping around), so the data position of a checkpoint
 * (epoch, batch) fixes them too and a resume continues bit for bit.
 */
public record Replay(TaskData earlier, float ratio, int perBatch) {
    /** Checks the ratio and that the earlier data's labels are all the model's (a label the head lacks could not be kept). */
    public static Replay of(TaskData earlier, float ratio, int batchSize) {
        TrainingChecks.require(ratio > 0 && ratio < 1, "--replay-ratio", ratio, "in (0, 1)");
        int n = Math.round(ratio * batchSize);
        if (n < 1 || n >= batchSize)
            throw new WaferException("--replay-ratio " + ratio + " of --batch-size " + batchSize + " gives " + n
                    + " replayed examples per batch; it must leave at least one of each task");
        if (!earlier.unknownLabels().isEmpty())
            throw new WaferException("--replay " + earlier.file() + ": labels the model does not have: " + earlier.unknownLabels()
                    + " (its labels are " + earlier.labels() + "; replay needs an earlier task of the same labels)");
        if (earlier.examples().isEmpty()) throw new WaferException("--replay " + earlier.file() + ": no examples");
        return new Replay(earlier, ratio, n);
    }

    /**
     * The epoch's batches: {@code own}'s length-bucketed batches of the new task's {@code train} examples (its batch size is
     * the run's less {@link #perBatch}), each with the next replayed examples added, padded by {@code padder}.
     */
    List<Batcher.Batch> batches(Batcher own, Batcher padder, List<Example> train, long seed, int epoch) {
        List<Example> all = new ArrayList<>(train);
        all.addAll(earlier.examples());
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < earlier.examples().size(); i++) order.add(train.size() + i);
        Collections.shuffle(order, new Random((seed + epoch) ^ 0x7e91a4L));
        List<Batcher.Batch> out = new ArrayList<>();
        int next = 0;
        for (Batcher.Batch b : own.batches(train, true, seed + epoch)) {
            int[] idx = java.util.Arrays.copyOf(b.examples(), b.size() + perBatch);
            for (int k = b.size(); k < idx.length; k++) idx[k] = order.get(next++ % order.size());
            out.add(padder.batch(all, idx));
        }
        return out;
    }
}
