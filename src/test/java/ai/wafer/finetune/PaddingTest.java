package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Right padding needs no attention mask: a causal token never attends to the padding after it, so a row
 * scores the same alone as in a batch with longer rows, for every method's hooks (prefix tuning included).
 */
class PaddingTest {
    @Test
    void aRowScoresTheSameAloneAndPadded() {
        for (Peft.Kind kind : Peft.Kind.values()) {
            for (Task task : List.of(Task.TOKEN_CLASSIFICATION, Task.SEQUENCE_CLASSIFICATION)) {
                FinetuneModel fm = FinetuneGradCheckTest.model(kind, task);
                fm.setTraining(false);
                Example shortEx = task == Task.TOKEN_CLASSIFICATION ? new Example(new int[] {3, 9, 4}, new int[] {1, 2, 0}, -1)
                        : new Example(new int[] {3, 9, 4}, null, 1);
                Example longEx = task == Task.TOKEN_CLASSIFICATION ? new Example(new int[] {5, 6, 7, 8, 1, 2, 3}, new int[] {0, 1, 2, 3, 0, 1, 2}, -1)
                        : new Example(new int[] {5, 6, 7, 8, 1, 2, 3}, null, 2);
                List<Example> ex = List.of(shortEx, longEx);
                Batcher batcher = new Batcher(2, 16, 28);
                Batcher.Batch alone = batcher.batch(ex, new int[] {0}), padded = batcher.batch(ex, new int[] {0, 1});
                float[] a = scores(fm, alone, 3), p = scores(fm, padded, 3);
                assertArrayEquals(a, java.util.Arrays.copyOf(p, a.length), 1e-5f, kind + " " + task);
            }
        }
    }

    /** The first row's logits: per token (its first n positions) or per sequence. */
    private static float[] scores(FinetuneModel fm, Batcher.Batch b, int n) {
        float[] h = fm.gpt.forwardHidden(b.ids(), b.size(), b.length());
        int K = fm.labels.size();
        if (fm.tokenHead != null) return java.util.Arrays.copyOf(fm.tokenHead.logits(h, b.size() * b.length()), n * K);
        return java.util.Arrays.copyOf(fm.seqHead.logits(h, b.lengths(), b.size(), b.length()), K);
    }
}
