package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import ai.wafer.train.AdamW;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Fine-tuning with activation recomputation gives the same bits as without, for every method and task: the hooks keep
 * their state per layer, so a block's forward run again in backward rebuilds it exactly, and LoRA's dropout draws the
 * same mask. Two steps (right, then left padding), so state left by one step is reused by the next.
 */
class FinetuneRecomputeTest {
    /** Each step's loss, every trainable tensor's gradient, then every trainable tensor's values after the steps. */
    private static List<float[]> train(Peft.Kind kind, Task task, boolean recompute) {
        // LoRA with dropout on every target (the mask must be redrawn the same); others as in the gradient checks
        Peft.Spec spec = new Peft.Spec(kind, new Lora.Config(3, 6, 0.2f, Lora.TARGETS), 1, 3, 4);
        FinetuneModel fm = FinetuneModel.create(FinetuneGradCheckTest.base(3), task, List.of("a", "b", "c", "d"), spec, 28, 5);
        fm.gpt.setRecompute(recompute);
        List<Parameter> params = fm.parameters().stream().filter(Parameter::trainable).toList();
        AdamW opt = new AdamW(params, AdamW.Hyper.defaults());
        fm.setTraining(true);
        List<float[]> out = new ArrayList<>();
        for (Batcher.Side side : new Batcher.Side[] {Batcher.Side.RIGHT, Batcher.Side.LEFT}) {
            fm.zeroGrad();
            // step 1 as Finetuner runs it; step 2 without beginMicroBatch: LoRA draws the mask at the first forward
            if (fm.method != null && side == Batcher.Side.RIGHT) fm.method.beginMicroBatch(0);
            double loss = fm.forward(FinetuneGradCheckTest.batch(task, side));
            fm.backward(1f / fm.validTargets());
            out.add(new float[] {(float) loss});
            for (Parameter p : params) out.add(p.gradArray().clone());
            opt.step(1e-2f, 1f);
        }
        for (Parameter p : params) out.add(p.array().clone());
        return out;
    }

    @Test void everyMethodAndTaskTrainsToTheSameBits() {
        for (Peft.Kind kind : Peft.Kind.values()) {
            for (Task task : Task.values()) {
                List<float[]> kept = train(kind, task, false), recomputed = train(kind, task, true);
                assertEquals(kept.size(), recomputed.size());
                for (int i = 0; i < kept.size(); i++)
                    assertArrayEquals(kept.get(i), recomputed.get(i), kind + " " + task + ": tensor " + i + " (losses, gradients, values)");
            }
        }
    }
}
