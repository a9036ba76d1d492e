package ai.wafer.finetune;

import ai.wafer.tensor.Activation;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A base loaded with {@link Checkpoint#loadFrozen} (float32 matrices left as read-only mappings of the file) trains
 * every parameter-efficient method exactly as the same base loaded onto the heap; the frozen matrices stay mapped,
 * without gradients, and the file is untouched.
 */
class FrozenBaseTest {
    private static final GptConfig CFG = new GptConfig(31, 32, 32, 3, 2, 128, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());

    @Test
    void mappedBaseTrainsLikeAHeapBase(@TempDir Path dir) throws Exception {
        Checkpoint.save(Gpt.init(CFG, 5), dir);
        byte[] before = Files.readAllBytes(dir.resolve("model.safetensors"));
        TaskData train = FinetunerTest.toy(48, 1), dev = FinetunerTest.toy(16, 2);
        for (Peft.Kind kind : new Peft.Kind[] {Peft.Kind.LORA, Peft.Kind.IA3, Peft.Kind.PREFIX, Peft.Kind.ADAPTER, Peft.Kind.BITFIT, Peft.Kind.TOP_K}) {
            FinetuneModel heap = train(Checkpoint.load(dir), kind, train, dev);
            Gpt mappedGpt = Checkpoint.loadFrozen(dir);
            for (Parameter p : mappedGpt.parameters()) {
                assertEquals(p.shape.length == 2, p.isMapped(), kind + " " + p.name + " mapped right after loading");
                assertFalse(p.trainable(), p.name);
            }
            FinetuneModel mapped = train(mappedGpt, kind, train, dev);
            var a = heap.parameters().stream().filter(Parameter::trainable).toList();
            var b = mapped.parameters().stream().filter(Parameter::trainable).toList();
            assertEquals(a.size(), b.size(), kind.toString());
            for (int i = 0; i < a.size(); i++) assertArrayEquals(a.get(i).array(), b.get(i).array(), kind + " " + a.get(i).name);
            for (Parameter p : mapped.gpt.parameters()) {
                if (p.trainable()) {
                    assertNotNull(p.data, p.name);
                } else if (p.shape.length == 2) {
                    assertTrue(p.isMapped(), kind + ": frozen " + p.name + " was copied to the heap");
                    assertNull(p.grad(), p.name);
                    assertArrayEquals(heap.gpt.parameter(p.name).array(), p.array(), p.name); // and still the base's values
                }
            }
            if (kind == Peft.Kind.TOP_K) assertFalse(mapped.gpt.h[CFG.nLayer() - 1].fcW().isMapped(), "top-k trains the last block");
        }
        assertTrue(Arrays.equals(before, Files.readAllBytes(dir.resolve("model.safetensors"))), "the checkpoint file changed");
    }

    /** A bf16 checkpoint's matrices stay mapped in bf16 (2 bytes a value) and train exactly as their widened heap copy. */
    @Test
    void bf16BaseTrainsInPlace(@TempDir Path dir) {
        Checkpoint.save(Gpt.init(CFG, 7), dir, ai.wafer.io.SafeTensors.DType.BF16, 0);
        TaskData train = FinetunerTest.toy(48, 1), dev = FinetunerTest.toy(16, 2);
        for (Peft.Kind kind : new Peft.Kind[] {Peft.Kind.LORA, Peft.Kind.ADAPTER}) {
            FinetuneModel heap = train(Checkpoint.load(dir), kind, train, dev), mapped = train(Checkpoint.loadFrozen(dir), kind, train, dev);
            var a = heap.parameters().stream().filter(Parameter::trainable).toList();
            var b = mapped.parameters().stream().filter(Parameter::trainable).toList();
            for (int i = 0; i < a.size(); i++) assertArrayEquals(a.get(i).array(), b.get(i).array(), kind + " " + a.get(i).name);
            for (Parameter p : mapped.gpt.parameters())
                if (p.shape.length == 2) assertEquals(2L * p.size(), p.weights().bytes(), kind + ": " + p.name + " kept in bf16, in place");
        }
    }

    /**
     * A frozen base quantized to int8 (finetune --base-dtype int8) trains exactly as a float32 base holding the same
     * dequantized values: the products read the int8 storage, widened, in forward and backward.
     */
    @Test
    void int8BaseTrainsAsItsDequantizedValues(@TempDir Path dir) {
        Checkpoint.save(Gpt.init(CFG, 8), dir);
        TaskData train = FinetunerTest.toy(48, 1), dev = FinetunerTest.toy(16, 2);
        FinetuneModel q = FinetuneModel.create(Checkpoint.loadFrozen(dir), Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(Peft.Kind.LORA), 30, 4);
        ai.wafer.generate.WeightType.INT8.applyToFrozen(q.gpt);
        FinetuneModel heap = FinetuneModel.create(Checkpoint.load(dir), Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(Peft.Kind.LORA), 30, 4);
        int quantized = 0;
        for (Parameter p : q.gpt.parameters()) {
            if (!(p.weights() instanceof ai.wafer.tensor.Int8Weights)) continue;
            quantized++;
            Parameter h = heap.gpt.parameter(p.name);
            System.arraycopy(p.array(), 0, h.data, h.off, p.size()); // the same values, as float32 on the heap
        }
        assertTrue(quantized >= 4 * CFG.nLayer(), "every frozen matrix quantized, got " + quantized);
        var opt = ai.wafer.testutil.ToyTasks.options(Peft.Kind.LORA, 1e-2f, 2);
        new Finetuner(q, train, dev, opt).run(null, "toy", null);
        new Finetuner(heap, train, dev, opt).run(null, "toy", null);
        var a = q.parameters().stream().filter(Parameter::trainable).toList();
        var b = heap.parameters().stream().filter(Parameter::trainable).toList();
        for (int i = 0; i < a.size(); i++) assertArrayEquals(b.get(i).array(), a.get(i).array(), a.get(i).name);
        // the same base from an int8 file (wafer convert --dtype int8), mapped as stored, trains to the same bits
        Checkpoint.convert(dir, dir.resolve("int8"), ai.wafer.io.SafeTensors.DType.I8, 0, 0, false);
        FinetuneModel file = FinetuneModel.create(Checkpoint.loadFrozen(dir.resolve("int8")), Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(Peft.Kind.LORA), 30, 4);
        ai.wafer.generate.WeightType.INT8.applyToFrozen(file.gpt);
        new Finetuner(file, train, dev, opt).run(null, "toy", null);
        var c = file.parameters().stream().filter(Parameter::trainable).toList();
        for (int i = 0; i < a.size(); i++) assertArrayEquals(a.get(i).array(), c.get(i).array(), "int8 file " + a.get(i).name);
        assertTrue(file.gpt.h[0].attnW().weights().mapped(), "the int8 file's base stays mapped");
    }

    /**
     * LoRA over the base of an int8 file (wafer convert --dtype int8, groups of 32 over inputs of 10 and 23: one partial
     * group each), mapped in place: the gradients of the adapter and head, through forward and backward products that
     * read the int8 mapping, match finite differences, as {@link FinetuneGradCheckTest} checks a float32 base.
     */
    @Test
    void loraOnAnInt8FileBaseHasFiniteDifferenceGradients(@TempDir Path dir) {
        Checkpoint.save(FinetuneGradCheckTest.base(3), dir.resolve("fp32"));
        Checkpoint.convert(dir.resolve("fp32"), dir.resolve("int8"), ai.wafer.io.SafeTensors.DType.I8, 32, 0, false);
        ai.wafer.tensor.Parallel.runSerially(() -> {
            Task task = Task.TOKEN_CLASSIFICATION;
            FinetuneModel fm = FinetuneModel.create(Checkpoint.loadFrozen(dir.resolve("int8")), task, java.util.List.of("a", "b", "c", "d"),
                    FinetuneGradCheckTest.spec(Peft.Kind.LORA), 28, 5);
            ai.wafer.generate.WeightType.parse("int8", 32).applyToFrozen(fm.gpt); // --base-dtype int8 --group-size 32: used as stored
            assertTrue(fm.gpt.h[0].fcW().weights() instanceof ai.wafer.tensor.Int8Weights q && q.mapped(), "the base stays the int8 mapping");
            java.util.Random r = new java.util.Random(9);
            for (Parameter p : fm.parameters()) if (p.trainable()) for (int i = 0; i < p.size(); i++) p.data[p.off + i] += (float) (r.nextGaussian() * 0.3);
            var b = FinetuneGradCheckTest.batch(task);
            fm.setTraining(true);
            fm.zeroGrad();
            fm.forward(b);
            fm.backward(1f);
            int checked = 0;
            for (Parameter p : fm.parameters()) {
                if (!p.trainable()) continue;
                FinetuneGradCheckTest.check("int8 base " + p.name, p.data, p.gradArray().clone(), () -> fm.forward(b), 5e-3, 3e-2);
                checked++;
            }
            assertTrue(checked >= 2 * FinetuneGradCheckTest.CFG.nLayer(), "checked " + checked);
        });
    }

    /** Saving a model whose weights are still mapped writes the same file as saving the heap copy. */
    @Test
    void savingAMappedModelWritesTheSameFile(@TempDir Path dir) throws Exception {
        Checkpoint.save(Gpt.init(CFG, 6), dir.resolve("a"));
        Checkpoint.save(Checkpoint.loadFrozen(dir.resolve("a")), dir.resolve("b"));
        assertArrayEquals(Files.readAllBytes(dir.resolve("a/model.safetensors")), Files.readAllBytes(dir.resolve("b/model.safetensors")));
    }

    private static FinetuneModel train(Gpt base, Peft.Kind kind, TaskData train, TaskData dev) {
        FinetuneModel fm = FinetuneModel.create(base, Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(kind), 30, 4);
        var opt = ai.wafer.testutil.ToyTasks.options(kind, 1e-2f, 2);
        new Finetuner(fm, train, dev, opt).run(null, "toy", null);
        return fm;
    }
}
