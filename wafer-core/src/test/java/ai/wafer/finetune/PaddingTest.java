package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Padding changes nothing. Right padding needs no attention mask (a causal token never attends to the padding after
 * it); left padding gives the model each row's start, so its real tokens skip the pads and count positions from 0.
 * Either way a row scores the same alone and padded, for every method's hooks (prefix tuning included), and a batch
 * has the same loss, gradients and predictions on either side.
 */
class PaddingTest {
    @Test
    void aRowScoresTheSameAloneAndPadded() {
        for (Batcher.Side side : Batcher.Side.values())
            for (Peft.Kind kind : Peft.Kind.values()) {
                for (Task task : List.of(Task.TOKEN_CLASSIFICATION, Task.SEQUENCE_CLASSIFICATION)) {
                    FinetuneModel fm = FinetuneGradCheckTest.model(kind, task);
                    fm.setTraining(false);
                    Example shortEx = task == Task.TOKEN_CLASSIFICATION ? new Example(new int[] {3, 9, 4}, new int[] {1, 2, 0}, -1)
                            : new Example(new int[] {3, 9, 4}, null, 1);
                    Example longEx = task == Task.TOKEN_CLASSIFICATION ? new Example(new int[] {5, 6, 7, 8, 1, 2, 3}, new int[] {0, 1, 2, 3, 0, 1, 2}, -1)
                            : new Example(new int[] {5, 6, 7, 8, 1, 2, 3}, null, 2);
                    List<Example> ex = List.of(shortEx, longEx);
                    Batcher batcher = new Batcher(2, 16, 28, side);
                    Batcher.Batch alone = batcher.batch(ex, new int[] {0}), padded = batcher.batch(ex, new int[] {0, 1});
                    assertEquals(side == Batcher.Side.LEFT ? 4 : 0, padded.starts()[0]);
                    assertArrayEquals(scores(fm, alone, 3), scores(fm, padded, 3), 1e-5f, side + " " + kind + " " + task);
                }
            }
    }

    /** The first row's logits: per token (its n real positions) or per sequence. */
    private static float[] scores(FinetuneModel fm, Batcher.Batch b, int n) {
        float[] h = fm.gpt.forwardHidden(b.ids(), b.starts(), b.size(), b.length());
        int K = fm.labels.size(), s = b.starts()[0];
        if (fm.tokenHead != null) return Arrays.copyOfRange(fm.tokenHead.logits(h, b.size() * b.length()), s * K, (s + n) * K);
        return Arrays.copyOf(fm.seqHead.logits(h, b.lengths(), b.starts(), b.size(), b.length()), K);
    }

    /** Loss, every trainable gradient and the predictions of the same rows padded right and left. */
    @Test
    void bothSidesGiveTheSameLossGradientsAndPredictions() {
        for (String c : List.of("FULL sequence-classification", "LORA sequence-classification", "PREFIX sequence-classification",
                "LORA token-classification", "FULL causal-lm", "PREFIX causal-lm")) {
            Peft.Kind kind = Peft.Kind.valueOf(c.split(" ")[0]);
            Task task = Task.parse(c.split(" ")[1]);
            FinetuneModel fm = FinetuneGradCheckTest.model(kind, task);
            fm.setTraining(false); // no dropout: the two passes must see the same model
            Batcher.Batch right = FinetuneGradCheckTest.batch(task), left = FinetuneGradCheckTest.batch(task, Batcher.Side.LEFT);
            assertEquals(0, right.starts()[1]);
            assertEquals(3, left.starts()[1]); // lengths 7, 4, 6
            fm.zeroGrad();
            double lr = fm.forward(right);
            int[] pr = task.classifies() ? fm.predictFromLastForward(right) : null;
            fm.backward(1f);
            float[][] gr = fm.parameters().stream().filter(Parameter::trainable).map(p -> p.gradArray().clone()).toArray(float[][]::new);
            fm.zeroGrad();
            double ll = fm.forward(left);
            int[] pl = task.classifies() ? fm.predictFromLastForward(left) : null;
            fm.backward(1f);
            float[][] gl = fm.parameters().stream().filter(Parameter::trainable).map(p -> p.gradArray().clone()).toArray(float[][]::new);
            assertEquals(lr, ll, 1e-5 * Math.abs(lr), c + " loss");
            for (int i = 0; i < gr.length; i++) assertArrayEquals(gr[i], gl[i], 1e-4f, c + " gradient " + i);
            if (task == Task.SEQUENCE_CLASSIFICATION) assertArrayEquals(pr, pl, c);
            if (task == Task.TOKEN_CLASSIFICATION)
                for (int r = 0; r < right.size(); r++)
                    for (int t = 0; t < right.lengths()[r]; t++)
                        assertEquals(pr[r * right.length() + t], pl[r * left.length() + left.starts()[r] + t], c + " tag");
        }
    }
}
