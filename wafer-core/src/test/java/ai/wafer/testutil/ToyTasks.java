package ai.wafer.testutil;

import ai.wafer.data.Example;
import ai.wafer.model.Task;
import ai.wafer.finetune.TaskData;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;

/** Small synthetic tasks for fine-tuning tests. */
public final class ToyTasks {
    /** Fine-tuning's defaults for {@code kind} at another learning rate and number of epochs. */
    public static ai.wafer.finetune.Finetuner.Options options(ai.wafer.peft.Peft.Kind kind, float lr, int epochs) {
        var d = ai.wafer.finetune.Finetuner.Options.defaults(kind);
        return new ai.wafer.finetune.Finetuner.Options(epochs, d.batchSize(), d.gradAccum(), lr, d.schedule(), d.warmupRatio(),
                d.minLrRatio(), d.hyper(), d.gradClip(), d.maxLength(), d.evalEvery(), d.patience(), d.seed(), d.progressBar(), d.padding());
    }

    private ToyTasks() {}

    /**
     * n tagged sequences of 3..maxLength tokens (ids below 30) whose tag is the token id mod 3: learnable from the
     * token alone (chance 1/3); varied lengths, so batches are padded and an epoch's last batch can be short.
     */
    public static TaskData tagging(int n, long seed, int maxLength) {
        Random r = new Random(seed);
        List<Example> ex = new ArrayList<>();
        List<List<String>> gold = new ArrayList<>();
        List<int[]> pos = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 3 + r.nextInt(maxLength - 2);
            int[] ids = new int[len], labels = new int[len], where = new int[len];
            List<String> g = new ArrayList<>();
            for (int t = 0; t < len; t++) {
                ids[t] = r.nextInt(30);
                labels[t] = ids[t] % 3;
                where[t] = t;
                g.add("t" + labels[t]);
            }
            ex.add(new Example(ids, labels, -1));
            gold.add(g);
            pos.add(where);
        }
        return new TaskData(Task.TOKEN_CLASSIFICATION, ex, gold, pos, List.of("t0", "t1", "t2"), Set.of(), 0, "toy");
    }

    /**
     * n sequences of 3..maxLength tokens (ids below 30) labelled by their first token's parity: sequence
     * classification, learnable from one token (chance 1/2).
     */
    public static TaskData classification(int n, long seed, int maxLength) {
        Random r = new Random(seed);
        List<Example> ex = new ArrayList<>();
        List<List<String>> gold = new ArrayList<>();
        List<int[]> pos = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] ids = new int[3 + r.nextInt(maxLength - 2)];
            for (int t = 0; t < ids.length; t++) ids[t] = r.nextInt(30);
            ex.add(new Example(ids, null, ids[0] % 2));
            gold.add(List.of("c" + ids[0] % 2));
            pos.add(new int[] {ids.length - 1});
        }
        return new TaskData(Task.SEQUENCE_CLASSIFICATION, ex, gold, pos, List.of("c0", "c1"), Set.of(), 0, "toy");
    }

    /** n causal-LM examples of 3..maxLength tokens (ids below 30) counting up mod 30 from a random start, loss on every token. */
    public static TaskData counting(int n, long seed, int maxLength) {
        Random r = new Random(seed);
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] ids = new int[3 + r.nextInt(maxLength - 2)];
            int start = r.nextInt(30);
            for (int t = 0; t < ids.length; t++) ids[t] = (start + t) % 30;
            ex.add(new Example(ids, ids.clone(), -1));
        }
        return new TaskData(Task.CAUSAL_LM, ex, List.of(), List.of(), List.of(), Set.of(), 0, "toy");
    }
}
