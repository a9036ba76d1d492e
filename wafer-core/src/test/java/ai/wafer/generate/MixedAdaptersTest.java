package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.KvCache;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Lora;
import ai.wafer.peft.MixedAdapters;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Several adapters over one base, unmerged ({@link InferenceModel#mixing}): each adapter gives the logits of its own
 * fine-tuned model with hooks (the training forward pass, another code path), and a decoding step whose rows belong to
 * different adapters (and to none) gives each row exactly the numbers it gets decoded alone.
 */
class MixedAdaptersTest {
    static final GptConfig CFG = GptConfig.of(2, 32, 2, 101, 64);
    static final int[] SEQ = {5, 17, 42, 8, 99, 3, 61, 7, 23};
    static final int PROMPT = 4;

    /** An adapter saved in a temporary directory, its tensors random as if trained; returns the hooked model too. */
    static FinetuneModel save(Path base, Peft.Spec spec, long seed, Path dir) {
        FinetuneModel fm = FinetuneModel.create(Checkpoint.load(base), Task.CAUSAL_LM, List.of(), spec, 100, seed);
        SplittableRandom r = new SplittableRandom(seed);
        for (Parameter p : fm.method.tensors().values())
            for (int i = 0; i < p.size(); i++) p.data[p.off + i] = (spec.kind() == Peft.Kind.IA3 ? 1f : 0f) + (float) r.nextGaussian() * 0.3f;
        fm.save(dir, base.toString());
        fm.setTraining(false);
        return fm;
    }

    /** Logits after each of SEQ's positions from PROMPT - 1 on, decoding SEQ's tokens with the rows given, all at once. */
    static float[][][] run(InferenceModel im, MixedAdapters.Adapter[] rows) {
        int n = rows.length, V = CFG.vocabSize(), steps = SEQ.length - PROMPT + 1;
        float[][][] out = new float[n][steps][V];
        KvCache[] caches = new KvCache[n];
        for (int i = 0; i < n; i++) {
            caches[i] = im.newCache(SEQ.length);
            im.prefill(caches[i], SEQ, 0, PROMPT, out[i][0], rows[i]);
        }
        float[] logits = new float[n * V];
        int[] tokens = new int[n];
        for (int s = 1; s < steps; s++) {
            Arrays.fill(tokens, SEQ[PROMPT + s - 1]);
            im.decode(caches, tokens, n, logits, rows);
            for (int i = 0; i < n; i++) System.arraycopy(logits, i * V, out[i][s], 0, V);
        }
        return out;
    }

    @Test void rowsOfDifferentAdaptersDecodeTogetherAsEachAlone() throws Exception {
        Path base = Files.createTempDirectory("wafer-base"), a = Files.createTempDirectory("wafer-lora-a"),
                b = Files.createTempDirectory("wafer-lora-b"), c = Files.createTempDirectory("wafer-ia3");
        Checkpoint.save(Gpt.init(CFG, 1), base);
        FinetuneModel[] hooked = {
                save(base, new Peft.Spec(Peft.Kind.LORA, new Lora.Config(4, 8, 0f, Lora.TARGETS), 0, 0, 0), 3, a),
                save(base, new Peft.Spec(Peft.Kind.LORA, new Lora.Config(2, 4, 0f, List.of("c_attn", "mlp.c_proj")), 0, 0, 0), 4, b),
                save(base, Peft.Spec.of(Peft.Kind.IA3), 5, c)};
        InferenceModel im = LoadedModel.mixing(base, null, WeightType.F32).model();
        MixedAdapters.Adapter[] ad = {im.loadAdapter(base, a), im.loadAdapter(base, b), im.loadAdapter(base, c), null};
        int V = CFG.vocabSize();

        float[][][] alone = new float[ad.length][][];
        for (int k = 0; k < ad.length; k++) alone[k] = run(im, new MixedAdapters.Adapter[] {ad[k]})[0];
        // each adapter alone is its fine-tuned model (the hooked training forward; the base for the row without one)
        Gpt plain = Checkpoint.load(base);
        for (int k = 0; k < ad.length; k++) {
            Gpt g = k < 3 ? hooked[k].gpt : plain;
            for (int s = 0; s < alone[k].length; s++) {
                int t = PROMPT + s;
                g.forward(Arrays.copyOf(SEQ, t), null, 1, t);
                float[] want = Arrays.copyOfRange(g.activations().logits, (t - 1) * V, t * V);
                for (int v = 0; v < V; v++) assertEquals(want[v], alone[k][s][v], 1e-4f, "adapter " + k + " position " + t + " token " + v);
            }
        }
        for (int k = 0; k < 3; k++) assertFalse(Arrays.equals(alone[k][1], alone[3][1]), "adapter " + k + " should change the logits");

        // one batch, rows in a mixed order with an adapter twice and a row of the base: bit for bit as alone
        int[] order = {1, 3, 0, 2, 0};
        MixedAdapters.Adapter[] rows = new MixedAdapters.Adapter[order.length];
        for (int i = 0; i < order.length; i++) rows[i] = ad[order[i]];
        float[][][] mixed = run(im, rows);
        for (int i = 0; i < order.length; i++)
            for (int s = 0; s < mixed[i].length; s++) assertArrayEquals(alone[order[i]][s], mixed[i][s], "row " + i + " step " + s);
    }

    @Test void prefixAndBottleneckAdaptersAreRefusedByName() throws Exception {
        Path base = Files.createTempDirectory("wafer-base");
        Checkpoint.save(Gpt.init(CFG, 1), base);
        InferenceModel im = LoadedModel.mixing(base, null, WeightType.F32).model();
        for (Peft.Kind kind : new Peft.Kind[] {Peft.Kind.PREFIX, Peft.Kind.ADAPTER}) {
            Path dir = Files.createTempDirectory("wafer-" + kind);
            FinetuneModel.create(Checkpoint.load(base), Task.CAUSAL_LM, List.of(), Peft.Spec.of(kind), 100, 2).save(dir, base.toString());
            WaferException e = assertThrows(WaferException.class, () -> im.loadAdapter(base, dir));
            assertTrue(e.getMessage().contains("a " + kind.cliName() + " adapter cannot be mixed"), e.getMessage());
        }
        Path other = Files.createTempDirectory("wafer-other"), lora = Files.createTempDirectory("wafer-lora");
        Checkpoint.save(Gpt.init(CFG, 2), other);
        save(other, Peft.Spec.of(Peft.Kind.LORA), 1, lora);
        WaferException e = assertThrows(WaferException.class, () -> im.loadAdapter(base, lora));
        assertTrue(e.getMessage().contains("another base model"), e.getMessage());
    }
}
