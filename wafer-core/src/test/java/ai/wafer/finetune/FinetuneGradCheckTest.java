package ai.wafer.finetune;

import ai.wafer.tensor.Activation;
import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.model.SequenceClassifier.Problem;
import ai.wafer.model.Task;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finite-difference checks of every fine-tuning method's trainable tensors, through the whole model and
 * each task's head and loss, on odd sizes: C = 10 (2 heads of 5), F = 23, V = 29, rows of uneven length
 * (right padding). Each method's tensors are perturbed first, so no gradient is zero by construction
 * (LoRA's B and the adapters' up projections start at zero; (IA)3's scales at one).
 */
class FinetuneGradCheckTest {
    static final GptConfig CFG = new GptConfig(29, 16, 10, 2, 2, 23, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());

    static Gpt base(long seed) {
        Gpt m = Gpt.init(CFG, seed);
        Random r = new Random(seed);
        for (Parameter p : m.parameters()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (r.nextGaussian() * 0.3);
        return m;
    }

    /** Three rows of lengths 7, 4 and 6: tags 0..3 per token (some -100), classes 0..2, LM labels with a prompt part ignored. */
    static Batcher.Batch batch(Task task) { return batch(task, Batcher.Side.RIGHT); }

    static Batcher.Batch batch(Task task, Batcher.Side side) { return batch(task, side, Problem.SINGLE_LABEL); }

    /** Multi-label rows get 0/1 for each of the 4 labels, regression rows a number. */
    static Batcher.Batch batch(Task task, Batcher.Side side, Problem problem) {
        Random r = new Random(11);
        List<Example> ex = new ArrayList<>();
        int[] lengths = {7, 4, 6};
        for (int i = 0; i < lengths.length; i++) {
            int n = lengths[i];
            int[] ids = new int[n], labels = new int[n];
            for (int t = 0; t < n; t++) {
                ids[t] = r.nextInt(28);
                labels[t] = task == Task.CAUSAL_LM ? (t < 2 ? Example.IGNORE : ids[t]) : (t == 1 ? Example.IGNORE : r.nextInt(4));
            }
            float[] values = problem == Problem.REGRESSION ? new float[] {(float) r.nextGaussian()}
                    : problem == Problem.MULTI_LABEL ? new float[] {i % 2, 1, 0, (i + 1) % 2} : null;
            ex.add(values != null ? new Example(ids, null, -1, values)
                    : task == Task.SEQUENCE_CLASSIFICATION ? new Example(ids, null, i) : new Example(ids, labels, -1));
        }
        return new Batcher(3, 16, 28, side).batch(ex, new int[] {0, 1, 2});
    }

    static Peft.Spec spec(Peft.Kind k) {
        return new Peft.Spec(k, new Lora.Config(3, 6, 0f, Lora.TARGETS), 1, 3, 4);
    }

    static FinetuneModel model(Peft.Kind kind, Task task) { return model(kind, task, Problem.SINGLE_LABEL); }

    static FinetuneModel model(Peft.Kind kind, Task task, Problem problem) {
        FinetuneModel fm = FinetuneModel.create(base(3), task, problem == Problem.REGRESSION ? List.of("LABEL_0") : List.of("a", "b", "c", "d"),
                spec(kind), 28, 5, problem);
        Random r = new Random(9);
        if (fm.method != null)
            for (Parameter p : fm.method.tensors().values()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (r.nextGaussian() * 0.3);
        for (Parameter p : fm.headParameters()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (r.nextGaussian() * 0.3);
        return fm;
    }

    /** Big tensors: a spread sample of about 40 elements keeps the test fast. NaN marks an unchecked element. */
    static void check(String what, float[] x, float[] analytic, java.util.function.DoubleSupplier loss, double h, double tol) {
        ai.wafer.testutil.FiniteDifference.check(what, x, analytic, loss, h, tol, Math.max(1, x.length / 40), true);
    }

    @ParameterizedTest
    @CsvSource({"LORA, token-classification", "LORA, sequence-classification", "LORA, causal-lm",
            "FULL, token-classification", "FULL, sequence-classification", "BITFIT, token-classification",
            "TOP_K, sequence-classification", "IA3, token-classification", "IA3, causal-lm",
            "PREFIX, token-classification", "PREFIX, sequence-classification", "ADAPTER, token-classification",
            "ADAPTER, causal-lm"})
    void gradients(Peft.Kind kind, String taskName) {
        // tiny matrices: the thread team's hand-offs would cost more than the work
        ai.wafer.tensor.Parallel.runSerially(() -> gradientsSerial(kind, taskName, Batcher.Side.RIGHT));
    }

    /** The same checks with the rows left-padded: the model's masked attention and shifted positions in the loop. */
    @ParameterizedTest
    @CsvSource({"FULL, sequence-classification", "LORA, sequence-classification", "PREFIX, token-classification", "FULL, causal-lm"})
    void gradientsLeftPadded(Peft.Kind kind, String taskName) {
        ai.wafer.tensor.Parallel.runSerially(() -> gradientsSerial(kind, taskName, Batcher.Side.LEFT));
    }

    /** The multi-label (binary cross-entropy per label) and regression (squared error) heads, through the whole model. */
    @ParameterizedTest
    @CsvSource({"FULL, multi_label_classification, RIGHT", "LORA, multi_label_classification, LEFT",
            "FULL, regression, RIGHT", "PREFIX, regression, LEFT"})
    void problemTypes(Peft.Kind kind, String problem, Batcher.Side side) {
        ai.wafer.tensor.Parallel.runSerially(() -> gradientsSerial(kind, "sequence-classification", side, Problem.parse(problem)));
    }

    private void gradientsSerial(Peft.Kind kind, String taskName, Batcher.Side side) { gradientsSerial(kind, taskName, side, Problem.SINGLE_LABEL); }

    private void gradientsSerial(Peft.Kind kind, String taskName, Batcher.Side side, Problem problem) {
        Task task = Task.parse(taskName);
        FinetuneModel fm = model(kind, task, problem);
        Batcher.Batch b = batch(task, side, problem);
        fm.setTraining(true);
        fm.zeroGrad();
        fm.forward(b);
        assertTrue(fm.validTargets() > 0);
        fm.backward(1f);
        java.util.function.DoubleSupplier L = () -> fm.forward(b);
        int checked = 0;
        for (Parameter p : fm.parameters()) {
            if (!p.trainable()) continue;
            float[] g = p.gradArray().clone();
            if (p.name.endsWith("attn.c_attn.bias") || p.name.endsWith("c_attn.ia3_l")) {
                // the key bias (softmax shift invariance) and the query scales of (IA)3 are held at zero gradient
                int C = CFG.nEmbd(), from = p.name.endsWith("bias") ? C : 0;
                for (int i = from; i < from + C; i++) assertEquals(0f, g[i], p.name + "[" + i + "]");
                // the key bias's true gradient is zero too; the query scales' is not, they are held fixed by choice
                for (int i = from; i < from + C; i++) g[i] = Float.NaN;
            }
            check(kind + " " + task + " " + p.name, p.data, g, L, 5e-3, 3e-2);
            checked++;
        }
        assertTrue(checked >= 1);
        // what must be frozen is frozen: no gradient buffer, so no optimiser state either
        if (kind.addsTensors()) for (Parameter p : fm.gpt.parameters()) assertTrue(!p.trainable(), p.name + " should be frozen");
    }

    @Test
    void bitfitAndTopKTrainWhatTheySay() {
        FinetuneModel bit = model(Peft.Kind.BITFIT, Task.TOKEN_CLASSIFICATION);
        for (Parameter p : bit.gpt.parameters()) assertEquals(p.name.endsWith(".bias"), p.trainable(), p.name);
        FinetuneModel top = model(Peft.Kind.TOP_K, Task.TOKEN_CLASSIFICATION);
        for (Parameter p : top.gpt.parameters())
            assertEquals(p.name.startsWith("h.1.") || p.name.startsWith("ln_f."), p.trainable(), p.name);
        assertTrue(top.trainableShare().matches("trainable [0-9,]+ of [0-9,]+ \\([0-9.]+%\\)"), top.trainableShare());
    }
}
