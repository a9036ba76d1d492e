package ai.wafer.finetune;

import ai.wafer.tensor.Activation;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Task;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The loop learns: a toy tagging task (tag = token id mod 3, readable from the token alone) is learned by each method (chance: 1/3). */
class FinetunerTest {
    static TaskData toy(int n, long seed) { return ai.wafer.testutil.ToyTasks.tagging(n, seed, 8); }

    @Test
    void eachMethodLearnsAToyTask() {
        GptConfig cfg = new GptConfig(31, 16, 32, 2, 2, 128, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
        TaskData train = toy(240, 1), dev = toy(60, 2);
        for (Peft.Kind kind : new Peft.Kind[] {Peft.Kind.FULL, Peft.Kind.LORA, Peft.Kind.ADAPTER, Peft.Kind.BITFIT}) {
            FinetuneModel fm = FinetuneModel.create(Gpt.init(cfg, 3), Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(kind), 30, 4);
            var opt = ai.wafer.testutil.ToyTasks.options(kind, kind == Peft.Kind.FULL ? 3e-3f : 1e-2f, 8);
            Finetuner.Result r = new Finetuner(fm, train, dev, opt).run(null, "toy", null);
            assertTrue(r.best().accuracy() > 0.75, kind + ": dev accuracy " + r.best().accuracy());
        }
    }

    @Test
    void earlyStoppingEndsARunThatStopsImproving() {
        GptConfig cfg = new GptConfig(31, 16, 16, 1, 2, 64, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
        TaskData train = toy(64, 1), dev = toy(16, 2);
        FinetuneModel fm = FinetuneModel.create(Gpt.init(cfg, 3), Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(Peft.Kind.FULL), 30, 4);
        // lr 0: the first evaluation is the best there will be; patience 2 stops the run at the third
        var base = ai.wafer.testutil.ToyTasks.options(Peft.Kind.FULL, 0f, 10);
        var opt = new Finetuner.Options(base.epochs(), base.batchSize(), base.gradAccum(), 0f, base.schedule(), base.warmupRatio(),
                base.minLrRatio(), base.hyper(), base.gradClip(), base.maxLength(), 1, 2, base.seed(), false, base.padding());
        Finetuner.Result r = new Finetuner(fm, train, dev, opt).run(null, "toy", null);
        assertTrue(r.stoppedEarly() && r.steps() == 3 && r.bestStep() == 1, r.toString());
    }
}
