package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.finetune.Task;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** --adapter: a base model plus a causal-LM LoRA adapter generates as the merged model saved by fine-tuning does. */
class AdapterGenerateTest {
    static final GptConfig CFG = GptConfig.of(2, 32, 2, 101, 64);

    static int[] greedy(LoadedModel lm, int[] prompt) {
        return new Generator(lm.model(), null).generate(prompt, SamplingParams.greedy(20), null).tokens();
    }

    @Test void baseAndLoraAdapterGenerateAsTheMergedModel() throws Exception {
        Path base = Files.createTempDirectory("wafer-base"), adapter = Files.createTempDirectory("wafer-lora"),
                merged = Files.createTempDirectory("wafer-merged");
        Checkpoint.save(Gpt.init(CFG, 1), base);
        FinetuneModel fm = FinetuneModel.create(Checkpoint.load(base), Task.CAUSAL_LM, List.of(),
                new Peft.Spec(Peft.Kind.LORA, new Lora.Config(4, 8, 0f, Lora.TARGETS), 0, 0, 0), 100, 2);
        // as if trained: LoRA's B starts at zero, which would make the adapter a no-op
        SplittableRandom r = new SplittableRandom(3);
        for (Parameter p : fm.method.tensors().values()) for (int i = 0; i < p.data.length; i++) p.data[i] = (float) r.nextGaussian() * 0.3f;
        fm.save(adapter, base.toString());
        ((Lora) fm.method).merge(fm.gpt);
        fm.saveWhole(merged);

        int[] prompt = {5, 17, 42, 8};
        int[] withAdapter = greedy(LoadedModel.load(base, adapter, null, WeightType.F32), prompt);
        assertArrayEquals(greedy(LoadedModel.load(merged, null, null, WeightType.F32), prompt), withAdapter);
        assertFalse(java.util.Arrays.equals(greedy(LoadedModel.load(base, null, null, WeightType.F32), prompt), withAdapter),
                "the adapter should change what the base model generates");
    }

    @Test void anAdapterThatCannotBeMergedIsAClearError() throws Exception {
        Path base = Files.createTempDirectory("wafer-base"), ia3 = Files.createTempDirectory("wafer-ia3"),
                tagger = Files.createTempDirectory("wafer-tag");
        Checkpoint.save(Gpt.init(CFG, 1), base);
        FinetuneModel.create(Checkpoint.load(base), Task.CAUSAL_LM, List.of(), Peft.Spec.of(Peft.Kind.IA3), 100, 2).save(ia3, base.toString());
        FinetuneModel.create(Checkpoint.load(base), Task.TOKEN_CLASSIFICATION, List.of("O", "B-X"), Peft.Spec.of(Peft.Kind.LORA), 100, 2)
                .save(tagger, base.toString());
        WaferException e = assertThrows(WaferException.class, () -> LoadedModel.load(base, ia3, null, WeightType.F32));
        assertTrue(e.getMessage().contains("only LoRA"), e.getMessage());
        e = assertThrows(WaferException.class, () -> LoadedModel.load(base, tagger, null, WeightType.F32));
        assertTrue(e.getMessage().contains("causal-lm"), e.getMessage());
        assertThrows(WaferException.class, () -> LoadedModel.load(base, base, null, WeightType.F32)); // not an adapter
    }
}
