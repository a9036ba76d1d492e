package ai.wafer.model;

import ai.wafer.WaferException;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.TokenShard;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static ai.wafer.testutil.Fixtures.assertClose;
import static ai.wafer.testutil.Fixtures.fixture;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * µP (Cerebras' µP checkpoints, Hugging Face's BTLM): their config as released, refusals of what Wafer does not
 * compute, generation against the float64 reference (gpt-mup; GptReferenceTest checks forward, backward and
 * training on it), save and reload, and Cerebras' initialisation and learning-rate multiples.
 */
class MuPTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path tmp;

    /** Cerebras-GPT-Intermediate's CerebrasGPT-1.3B_muP/checkpoint_24334/config.json, as published. */
    static final String CEREBRAS_1_3B_MUP = """
            {"attn_pdrop": 0.0, "scale_attn_weights": true, "resid_pdrop": 0.0, "mup_embeddings_scale": 10,
             "n_inner": 8192, "n_embd": 2048, "layer_norm_epsilon": 1e-05, "n_positions": 2048,
             "activation_function": "gelu", "n_head": 16, "n_layer": 24, "mup_output_alpha": 1.0,
             "mup_width_scale": 0.125, "position_embedding_type": "learned", "mup_scale_qk_dot_by_d": true,
             "tie_word_embeddings": true, "vocab_size": 50257, "alibi_scaling": null, "embd_pdrop": 0.0,
             "model_type": "btlm", "use_cache": true, "auto_map": {
               "AutoConfig": "cerebras/btlm-3b-8k-base--configuration_btlm.BTLMConfig",
               "AutoModel": "cerebras/btlm-3b-8k-base--modeling_btlm.BTLMModel",
               "AutoModelForCausalLM": "cerebras/btlm-3b-8k-base--modeling_btlm.BTLMLMHeadModel"}}""";

    static GptConfig parse(String json) throws Exception { return GptConfig.fromJson(JSON.readTree(json), "config.json"); }

    @Test
    void readsCerebrasMupConfig() throws Exception {
        GptConfig c = parse(CEREBRAS_1_3B_MUP);
        assertEquals(new MuP(10, 1, 0.125, true), c.mup());
        assertEquals(2048, c.nEmbd());
        assertEquals(ai.wafer.tensor.Activation.GELU, c.activation());
        assertEquals(1f / 128, c.attnScale(), 0f); // d_head 128, not its square root
        assertEquals(0.125f, c.mup().logitScale(), 0f);
        // written back as it came (BTLM, its code, its scales), so it reads back the same
        GptConfig again = GptConfig.fromJson(c.toJson(), "again");
        assertEquals("[\"BTLMLMHeadModel\"]", again.extra().get("architectures").toString()); // the one key added
        assertEquals(c.withExtra("architectures", again.extra().get("architectures")), again);
        assertEquals("btlm", c.toJson().get("model_type").asText());
        // CerebrasGPT-111_muP's first config has neither alpha nor width scale: BTLM's defaults, 1
        assertEquals(new MuP(10, 1, 1, true), parse(CEREBRAS_1_3B_MUP.replace("\"mup_output_alpha\": 1.0,", "")
                .replace("\"mup_width_scale\": 0.125,", "")).mup());
    }

    @Test
    void refusesWhatItDoesNotComputeByName() {
        String[][] cases = {
                {"\"position_embedding_type\": \"learned\"", "\"position_embedding_type\": \"alibi\"", "position_embedding_type"},
                {"\"alibi_scaling\": null", "\"alibi_scaling\": {\"type\": \"linear\", \"factor\": 2.0}", "alibi_scaling"},
                {"\"activation_function\": \"gelu\"", "\"activation_function\": \"swiglu\"", "swiglu"},
                {"\"model_type\": \"btlm\"", "\"model_type\": \"jais\"", "jais"},
                // GPT2LMHeadModel ignores µP keys: in a gpt2 config they are refused, not guessed at
                {"\"model_type\": \"btlm\"", "\"model_type\": \"gpt2\"", "mup_embeddings_scale"},
                {"\"use_cache\": true", "\"add_cross_attention\": true", "add_cross_attention"}};
        for (String[] c : cases) {
            assertTrue(CEREBRAS_1_3B_MUP.contains(c[0]), c[0]);
            var e = assertThrows(WaferException.class, () -> parse(CEREBRAS_1_3B_MUP.replace(c[0], c[1])), c[1]);
            assertTrue(e.getMessage().contains(c[2]), e.getMessage());
        }
        // the values that turn a feature off are accepted, in any JSON spelling of the number
        assertEquals(MuP.NONE, assertDoesNotThrowParse("{\"model_type\": \"gpt2\", \"mup_width_scale\": 1, \"mup_output_alpha\": 1.0}").mup());
    }

    private static GptConfig assertDoesNotThrowParse(String json) {
        try { return parse(json); } catch (Exception e) { throw new AssertionError(e); }
    }

    /** Prefill of 5 tokens, then 3 decoding steps: each position's logits are the reference's (training's forward). */
    @Test
    void generationMatchesReference() throws Exception {
        Path dir = fixture("gpt-mup");
        Gpt m = Checkpoint.load(dir);
        int B = 2, T = 8, V = m.config.vocabSize();
        int[] tokens, x = new int[B * T], y = new int[B * T];
        try (TokenShard s = TokenShard.open(dir.resolve("tokens.bin"))) { tokens = s.read(0, (int) s.size()); }
        GptReferenceTest.batch(tokens, 0, B, T, x, y);
        float[] want = ai.wafer.testutil.Fixtures.tensor(dir.resolve("expected/step1_logits.safetensors"), "logits");
        KvCache[] cache = {new KvCache(m.config.nLayer(), m.config.nHead(), m.config.headSize(), m.config.nPositions())};
        Activations a = m.newGenerationActs(1, 5);
        float[] logits = new float[V];
        m.forwardCached(a, cache, Arrays.copyOf(x, 5), 1, 5, logits);
        assertClose("prefill logits", Arrays.copyOfRange(want, 4 * V, 5 * V), logits, 1e-4);
        for (int t = 5; t < T; t++) {
            m.forwardCached(a, cache, new int[]{x[t]}, 1, 1, logits);
            assertClose("decode logits at " + t, Arrays.copyOfRange(want, t * V, (t + 1) * V), logits, 1e-4);
        }
    }

    @Test
    void savedModelReloadsWithTheSameLogits() throws Exception {
        GptConfig c = GptConfig.of(2, 64, 4, 101, 32).withMup(MuP.of(16, 64, 10, 1.5));
        Gpt m = Gpt.init(c, 5);
        int[] x = new int[2 * 9];
        for (int i = 0; i < x.length; i++) x[i] = (i * 37) % 101;
        m.forward(x, null, 2, 9);
        float[] before = Arrays.copyOf(m.activations().logits, 2 * 9 * 101);
        Checkpoint.save(m, tmp.resolve("out"));
        JsonNode saved = JSON.readTree(Files.readString(tmp.resolve("out/config.json")));
        assertEquals("btlm", saved.get("model_type").asText());
        assertEquals(0.25, saved.get("mup_width_scale").asDouble());
        assertEquals(10, saved.get("mup_embeddings_scale").asDouble());
        assertEquals(1.5, saved.get("mup_output_alpha").asDouble());
        assertTrue(saved.get("mup_scale_qk_dot_by_d").asBoolean());
        Gpt back = Checkpoint.load(tmp.resolve("out"));
        assertEquals(c.mup(), back.config.mup());
        back.forward(x, null, 2, 9);
        assertArrayEquals(before, Arrays.copyOf(back.activations().logits, before.length));
        // and the scales matter: the same weights without µP give other logits
        Gpt sp = new Gpt(c.withMup(MuP.NONE));
        for (int i = 0; i < sp.parameters().size(); i++)
            System.arraycopy(m.parameters().get(i).data, 0, sp.parameters().get(i).data, 0, m.parameters().get(i).size());
        sp.forward(x, null, 2, 9);
        assertTrue(Math.abs(sp.activations().logits[0] - before[0]) > 1e-3);
    }

    /** Cerebras' modelzoo recipe at width multiplier 4 (d 256 over base 64). */
    @Test
    void cerebrasInitAndLearningRates() {
        GptConfig sp = GptConfig.of(2, 256, 4, 101, 16);
        Gpt m = Gpt.init(sp.withMup(MuP.of(64, 256, 10, 1)), 3), plain = Gpt.init(sp, 3);
        double proj = 0.02 / Math.sqrt(4);
        assertEquals(0.02 / 2, std(m.parameter("h.0.mlp.c_fc.weight")), 0.02 / 2 * 0.03);
        assertEquals(0.02 / 2, std(m.parameter("h.1.attn.c_attn.weight")), 0.02 / 2 * 0.03);
        assertEquals(proj / 2, std(m.parameter("h.0.attn.c_proj.weight")), proj / 2 * 0.03);
        assertEquals(proj / 2, std(m.parameter("h.1.mlp.c_proj.weight")), proj / 2 * 0.03);
        assertEquals(0.02, std(m.parameter("wte.weight")), 0.02 * 0.03);
        assertEquals(0.02, std(plain.parameter("h.0.mlp.c_fc.weight")), 0.02 * 0.03);
        for (Parameter p : m.parameters()) {
            boolean hidden = p.name.matches("h\\.\\d+\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)\\.weight");
            assertEquals(hidden ? 0.25f : 1f, p.lrScale, 0f, p.name);
        }
        for (Parameter p : plain.parameters()) assertEquals(1f, p.lrScale, 0f, p.name);
    }

    private static double std(Parameter p) {
        double s = 0;
        for (int i = 0; i < p.size(); i++) s += (double) p.data[i] * p.data[i];
        return Math.sqrt(s / p.size());
    }
}
