package ai.wafer.generate;

import ai.wafer.model.KvCache;
import ai.wafer.WaferException;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.model.Task;
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

/** --adapter: a base model plus a causal-LM adapter (LoRA, (IA)3, prefix) generates as the fine-tuned model does. */
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
        for (Parameter p : fm.method.tensors().values()) for (int i = 0; i < p.size(); i++) p.data[p.off + i] = (float) r.nextGaussian() * 0.3f;
        fm.save(adapter, base.toString());
        ((Lora) fm.method).merge(fm.gpt);
        fm.saveWhole(merged);

        int[] prompt = {5, 17, 42, 8};
        int[] withAdapter = greedy(LoadedModel.load(base, adapter, null, WeightType.F32), prompt);
        assertArrayEquals(greedy(LoadedModel.load(merged, null, null, WeightType.F32), prompt), withAdapter);
        assertFalse(java.util.Arrays.equals(greedy(LoadedModel.load(base, null, null, WeightType.F32), prompt), withAdapter),
                "the adapter should change what the base model generates");
    }

    /**
     * (IA)3 merged into the weights and a prefix put into the KV cache give the next-token logits of the fine-tuned
     * model with its hooks (the training forward pass), after a prompt and after a few decoded tokens.
     */
    @Test void ia3AndPrefixAdaptersGenerateAsTheHookedModel() throws Exception {
        Path base = Files.createTempDirectory("wafer-base");
        Checkpoint.save(Gpt.init(CFG, 1), base);
        for (Peft.Kind kind : new Peft.Kind[] {Peft.Kind.IA3, Peft.Kind.PREFIX}) {
            Path adapter = Files.createTempDirectory("wafer-" + kind);
            FinetuneModel fm = FinetuneModel.create(Checkpoint.load(base), Task.CAUSAL_LM, List.of(), Peft.Spec.of(kind), 100, 2);
            SplittableRandom r = new SplittableRandom(5); // as if trained: scales away from one
            for (Parameter p : fm.method.tensors().values())
                for (int i = 0; i < p.size(); i++) p.data[p.off + i] = kind == Peft.Kind.IA3 ? 1f + (float) r.nextGaussian() * 0.3f : p.data[p.off + i];
            fm.save(adapter, base.toString());
            fm.setTraining(false);
            LoadedModel lm = LoadedModel.load(base, adapter, null, WeightType.F32);
            int P = kind == Peft.Kind.PREFIX ? 16 : 0;
            assertEquals(CFG.nPositions() - P, lm.model().contextLength());
            int[] seq = {5, 17, 42, 8, 99, 3, 61};
            int V = CFG.vocabSize();
            KvCache cache = lm.model().newCache(seq.length);
            float[] logits = new float[V];
            lm.model().prefill(cache, seq, 0, 4, logits);
            for (int t = 4; t <= seq.length; t++) {
                fm.gpt.forward(java.util.Arrays.copyOf(seq, t), null, 1, t);
                float[] want = java.util.Arrays.copyOfRange(fm.gpt.activations().logits, (t - 1) * V, t * V);
                for (int v = 0; v < V; v++) assertEquals(want[v], logits[v], 1e-4f, kind + " position " + t + " token " + v);
                if (t < seq.length) lm.model().decode(new KvCache[] {cache}, new int[] {seq[t]}, 1, logits);
            }
        }
    }

    @Test void anAdapterThatCannotBeMergedIsAClearError() throws Exception {
        Path base = Files.createTempDirectory("wafer-base"), bottleneck = Files.createTempDirectory("wafer-adapter"),
                tagger = Files.createTempDirectory("wafer-tag");
        Checkpoint.save(Gpt.init(CFG, 1), base);
        FinetuneModel.create(Checkpoint.load(base), Task.CAUSAL_LM, List.of(), Peft.Spec.of(Peft.Kind.ADAPTER), 100, 2)
                .save(bottleneck, base.toString());
        FinetuneModel.create(Checkpoint.load(base), Task.TOKEN_CLASSIFICATION, List.of("O", "B-X"), Peft.Spec.of(Peft.Kind.LORA), 100, 2)
                .save(tagger, base.toString());
        WaferException e = assertThrows(WaferException.class, () -> LoadedModel.load(base, bottleneck, null, WeightType.F32));
        assertTrue(e.getMessage().contains("adds layers"), e.getMessage());
        e = assertThrows(WaferException.class, () -> LoadedModel.load(base, tagger, null, WeightType.F32));
        assertTrue(e.getMessage().contains("causal-lm"), e.getMessage());
        assertThrows(WaferException.class, () -> LoadedModel.load(base, base, null, WeightType.F32)); // not an adapter
    }
}
