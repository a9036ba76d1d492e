package ai.wafer.peft;

import ai.wafer.tensor.Activation;
import ai.wafer.WaferException;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA: a zero B changes nothing, merging changes nothing, and the adapter files are PEFT's. */
class LoraTest {
    static final GptConfig CFG = new GptConfig(37, 16, 12, 2, 3, 40, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
    static final int B = 2, T = 9;
    static final int[] X = new Random(1).ints(B * T, 0, 37).toArray();

    static float[] logits(Gpt m) {
        m.forward(X, null, B, T);
        return java.util.Arrays.copyOf(m.activations().logits, B * T * CFG.vocabSize());
    }

    static Lora lora(Gpt m, float dropout) {
        return new Lora(m, new Lora.Config(4, 8, dropout, Lora.TARGETS), 7);
    }

    @Test
    void zeroBLeavesTheLogitsUnchanged() {
        Gpt m = Gpt.init(CFG, 2);
        float[] before = logits(m);
        Lora l = lora(m, 0f);
        l.attach(m);
        for (Parameter p : l.tensors().values()) if (p.name.contains("lora_B")) for (float v : p.array()) assertEquals(0f, v);
        assertArrayEquals(before, logits(m), 0f);
    }

    @Test
    void mergedAndUnmergedAgree() {
        Gpt m = Gpt.init(CFG, 2);
        Lora l = lora(m, 0.3f);
        Random r = new Random(4);
        for (Parameter p : l.tensors().values()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (r.nextGaussian() * 0.2);
        l.attach(m);
        l.setTraining(false); // dropout is for training only
        float[] unmerged = logits(m);
        float[] base = logits(Gpt.init(CFG, 2));
        double moved = 0;
        for (int i = 0; i < base.length; i++) moved = Math.max(moved, Math.abs(base[i] - unmerged[i]));
        assertTrue(moved > 1e-3, "the LoRA must change the logits for the test to mean anything: " + moved);
        l.merge(m);
        for (int i = 0; i < CFG.nLayer(); i++) assertTrue(m.hooks(i).isEmpty());
        assertArrayEquals(unmerged, logits(m), 1e-5f);
    }

    @Test
    void savesInPeftLayoutAndLoadsBack(@TempDir Path dir) throws Exception {
        Gpt m = Gpt.init(CFG, 2);
        Lora l = lora(m, 0f);
        Random r = new Random(5);
        for (Parameter p : l.tensors().values()) for (int i = 0; i < p.size(); i++) p.data[i] += (float) (r.nextGaussian() * 0.2);
        var w = new ObjectMapper().createObjectNode().put("base_fingerprint", Fingerprint.of(m));
        AdapterIo.save(dir, l, "CAUSAL_LM", "base-dir", List.of(), w);
        l.attach(m);
        float[] expected = logits(m);

        JsonNode cfg = new ObjectMapper().readTree(Files.readString(dir.resolve("adapter_config.json")));
        assertEquals("LORA", cfg.get("peft_type").asText());
        assertEquals("CAUSAL_LM", cfg.get("task_type").asText());
        assertEquals(4, cfg.get("r").asInt());
        assertEquals(8.0, cfg.get("lora_alpha").asDouble());
        assertTrue(cfg.get("fan_in_fan_out").asBoolean());
        assertEquals(List.of("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"),
                new ObjectMapper().convertValue(cfg.get("target_modules"), List.class));
        try (SafeTensors.Reader rd = SafeTensors.open(dir.resolve("adapter_model.safetensors"))) {
            assertEquals(2 * 4 * 2, rd.names().size());
            // PEFT's shapes: lora_A [r, in], lora_B [out, r]; c_attn is 12 -> 36, mlp.c_proj 40 -> 12
            assertArrayEquals(new long[] {4, 12}, rd.info("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape());
            assertArrayEquals(new long[] {36, 4}, rd.info("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape());
            assertArrayEquals(new long[] {4, 40}, rd.info("base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight").shape());
            assertArrayEquals(new long[] {12, 4}, rd.info("base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight").shape());
            assertTrue(rd.contains("base_model.model.transformer.h.1.attn.c_proj.lora_A.weight"));
            assertTrue(rd.contains("base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight"));
        }

        Gpt fresh = Gpt.init(CFG, 2);
        AdapterIo.Info info = AdapterIo.info(dir);
        Method back = AdapterIo.create(fresh, info, dir);
        AdapterIo.loadTensors(dir, back, List.of());
        back.attach(fresh);
        assertArrayEquals(expected, logits(fresh), 0f);
    }

    @Test
    void anAdapterForAnotherShapeIsRefused(@TempDir Path dir) {
        Gpt m = Gpt.init(CFG, 2);
        AdapterIo.save(dir, lora(m, 0f), "CAUSAL_LM", "x", List.of(), new ObjectMapper().createObjectNode());
        GptConfig wider = new GptConfig(37, 16, 15, 2, 3, 40, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
        Gpt other = Gpt.init(wider, 2);
        Method back = AdapterIo.create(other, AdapterIo.info(dir), dir);
        var e = assertThrows(WaferException.class, () -> AdapterIo.loadTensors(dir, back, List.of()));
        assertTrue(e.getMessage().contains("another base model"), e.getMessage());
        assertTrue(e.getMessage().contains("lora_A"), e.getMessage());
    }

    @Test
    void configChecks() {
        assertThrows(WaferException.class, () -> new Lora.Config(0, 8, 0, List.of("c_attn")));
        var e = assertThrows(WaferException.class, () -> new Lora.Config(4, 8, 0, List.of("q_proj")));
        assertTrue(e.getMessage().contains("q_proj"));
        assertFalse(Peft.Kind.FULL.addsTensors());
        assertEquals("trainable 1 of 4 (25.00%)", Peft.share(List.of(trainable(new Parameter("a", 1)), new Parameter("b", 3))));
    }

    private static Parameter trainable(Parameter p) { p.setTrainable(true); return p; }
}
