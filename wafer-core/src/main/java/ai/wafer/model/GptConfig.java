package ai.wafer.model;

import ai.wafer.tensor.Activation;

import ai.wafer.WaferException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.DoubleNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The shape of a GPT-2-architecture model, as Hugging Face's {@code config.json} states it: {@code model_type}
 * "gpt2", or "btlm" (Cerebras' µP checkpoints: GPT-2 plus the scales of {@link MuP}, with learned positions).
 * Absent keys take Hugging Face's defaults; keys Wafer does not interpret are kept in
 * {@code extra} and written back unchanged, so a round trip loses nothing.
 */
public record GptConfig(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, int nInner,
                        Activation activation, float layerNormEpsilon, boolean scaleAttnWeights,
                        boolean tieWordEmbeddings, float initializerRange, Map<String, JsonNode> extra, MuP mup) {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** Keys of Hugging Face's GPT2Config (and PretrainedConfig) that are known and need no interpretation here. */
    private static final Set<String> KNOWN_PASSIVE = Set.of(
            "architectures", "model_type", "bos_token_id", "eos_token_id", "pad_token_id", "resid_pdrop",
            "embd_pdrop", "attn_pdrop", "summary_type", "summary_use_proj", "summary_activation",
            "summary_proj_to_labels", "summary_first_dropout", "use_cache", "torch_dtype", "dtype",
            "transformers_version", "task_specific_params", "n_ctx", "id2label", "label2id", "num_labels",
            "problem_type", "classifier_dropout", "_name_or_path", "gradient_checkpointing", "tokenizer_class",
            "output_hidden_states", "output_attentions", "return_dict", "finetuning_task", "prefix",
            "max_length", "do_sample", "temperature", "top_k", "top_p", "name_or_path", "auto_map",
            "wafer_max_length", "wafer_columns"); // a fine-tuned model's training settings, which peft/FineTuned reads

    /**
     * Keys of what Wafer does not compute, accepted only at the value that turns the feature off (Hugging Face's
     * default): any other value is refused by name rather than ignored. µP's keys are computed for btlm only
     * (GPT2LMHeadModel ignores them, so in a gpt2 config they would mean two different models).
     */
    private static final Map<String, JsonNode> OFF = Map.of(
            "scale_attn_by_inverse_layer_idx", BooleanNode.FALSE, "reorder_and_upcast_attn", BooleanNode.FALSE,
            "add_cross_attention", BooleanNode.FALSE, "position_embedding_type", TextNode.valueOf("learned"),
            "alibi_scaling", NullNode.instance);
    private static final Map<String, JsonNode> MUP_OFF = Map.of(
            "mup_embeddings_scale", DoubleNode.valueOf(1), "mup_output_alpha", DoubleNode.valueOf(1),
            "mup_width_scale", DoubleNode.valueOf(1), "mup_scale_qk_dot_by_d", BooleanNode.FALSE);

    /** Standard parametrisation (no µP). */
    public GptConfig(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, int nInner, Activation activation,
                     float layerNormEpsilon, boolean scaleAttnWeights, boolean tieWordEmbeddings, float initializerRange,
                     Map<String, JsonNode> extra) {
        this(vocabSize, nPositions, nEmbd, nLayer, nHead, nInner, activation, layerNormEpsilon, scaleAttnWeights,
                tieWordEmbeddings, initializerRange, extra, MuP.NONE);
    }

    public GptConfig {
        extra = Map.copyOf(extra);
        check(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
        check(nPositions > 0, "n_positions must be positive, got " + nPositions);
        check(nLayer > 0, "n_layer must be positive, got " + nLayer);
        check(nHead > 0 && nEmbd > 0 && nEmbd % nHead == 0,
                "n_embd (" + nEmbd + ") must be a positive multiple of n_head (" + nHead + ")");
        check(nInner > 0, "n_inner must be positive, got " + nInner);
        check(layerNormEpsilon > 0, "layer_norm_epsilon must be positive");
        long c = nEmbd, largest = Math.max(Math.max((long) vocabSize, nPositions) * c, Math.max(3 * c, nInner) * c);
        check(largest <= Integer.MAX_VALUE, "a weight matrix of " + largest + " values (vocab_size " + vocabSize + ", n_positions "
                + nPositions + ", n_embd " + nEmbd + ", n_inner " + nInner + ") exceeds the " + Integer.MAX_VALUE + " a Java array holds");
    }

    /** Parameters of the whole model (the GPT-2 layout of {@code Gpt}), computed without building it. */
    public long parameterCount() {
        long c = nEmbd, f = nInner;
        long block = 4 * c + (3 * c * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c); // 2 LayerNorms, c_attn, c_proj, c_fc, c_proj
        return (long) vocabSize * c * (tieWordEmbeddings ? 1 : 2) + (long) nPositions * c + nLayer * block + 2 * c;
    }

    /**
     * Refuses, before anything is allocated, a model whose float32 weights do
     * not fit in what this JVM's heap can still grow to, saying how much it needs.
     */
    public void requireHeap(String where) {
        long need = 4 * parameterCount();
        Runtime rt = Runtime.getRuntime();
        long left = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (need > left) throw new WaferException(String.format("%s: the model's %,d parameters need %.2f GB of memory for their "
                + "weights alone; this JVM has %.2f GB left of its %.2f GB maximum heap (raise it: WAFER_JAVA_OPTS=-Xmx...)",
                where, parameterCount(), need / 1e9, left / 1e9, rt.maxMemory() / 1e9));
    }

    private static void check(boolean ok, String msg) { if (!ok) throw new WaferException("config: " + msg); }

    public int headSize() { return nEmbd / nHead; }

    /**
     * Cerebras-GPT's initialisation of parameter {@code name}: the std of its normal draw (0.02, the two output
     * projections of each block 0.02 / sqrt(2 * n_layer), times µP's factor for the block matrices), or 0 for the
     * constants: biases zero, LayerNorm gains one.
     */
    public float initStd(String name) {
        if (name.endsWith(".bias") || name.startsWith("ln_") || name.contains(".ln_")) return 0f;
        boolean proj = name.endsWith("attn.c_proj.weight") || name.endsWith("mlp.c_proj.weight");
        return (proj ? (float) (initializerRange / Math.sqrt(2.0 * nLayer)) : initializerRange) * mup.initScale(name);
    }

    /** The constant a parameter with {@link #initStd} 0 starts at: one for a LayerNorm gain, zero otherwise. */
    public static float initConstant(String name) { return name.endsWith(".weight") ? 1f : 0f; }

    /** The factor on q.k in attention: 1/sqrt(d_head), or 1/d_head under µP (BTLM's d_head ** -attn_scale_power); 1 unscaled. */
    public float attnScale() {
        if (!scaleAttnWeights) return 1f;
        return (float) (mup.scaleQkDotByD() ? 1.0 / headSize() : 1.0 / Math.sqrt(headSize()));
    }

    /** Builder-style copy with the main shape changed; everything else kept (a µP width scale too: set it after). */
    public GptConfig withShape(int nLayer, int nEmbd, int nHead, int vocabSize, int nPositions) {
        return new GptConfig(vocabSize, nPositions, nEmbd, nLayer, nHead, 4 * nEmbd, activation, layerNormEpsilon,
                scaleAttnWeights, tieWordEmbeddings, initializerRange, extra, mup);
    }

    public GptConfig withExtra(String key, JsonNode value) {
        Map<String, JsonNode> e = new LinkedHashMap<>(extra);
        e.put(key, value);
        return new GptConfig(vocabSize, nPositions, nEmbd, nLayer, nHead, nInner, activation, layerNormEpsilon,
                scaleAttnWeights, tieWordEmbeddings, initializerRange, e, mup);
    }

    public GptConfig withMup(MuP mup) {
        return new GptConfig(vocabSize, nPositions, nEmbd, nLayer, nHead, nInner, activation, layerNormEpsilon,
                scaleAttnWeights, tieWordEmbeddings, initializerRange, extra, mup);
    }

    /** A Cerebras-GPT-style configuration: exact GELU, epsilon 1e-5, tied embeddings, d_ffn = 4d. */
    public static GptConfig of(int nLayer, int nEmbd, int nHead, int vocabSize, int nPositions) {
        return new GptConfig(vocabSize, nPositions, nEmbd, nLayer, nHead, 4 * nEmbd, Activation.GELU, 1e-5f,
                true, true, 0.02f, Map.of());
    }

    /** The seven Cerebras-GPT sizes and small shapes for tests and demos. */
    public static final Map<String, GptConfig> PRESETS = presets();

    private static Map<String, GptConfig> presets() {
        Map<String, GptConfig> m = new LinkedHashMap<>();
        m.put("cerebras-gpt-111m", of(10, 768, 12, 50257, 2048));
        m.put("cerebras-gpt-256m", of(14, 1088, 17, 50257, 2048));
        m.put("cerebras-gpt-590m", of(18, 1536, 12, 50257, 2048));
        m.put("cerebras-gpt-1.3b", of(24, 2048, 16, 50257, 2048));
        m.put("cerebras-gpt-2.7b", of(32, 2560, 32, 50257, 2048));
        m.put("cerebras-gpt-6.7b", of(32, 4096, 32, 50257, 2048));
        m.put("cerebras-gpt-13b", of(40, 5120, 40, 50257, 2048));
        m.put("gpt2-124m", of(12, 768, 12, 50257, 1024));
        m.put("tiny", of(2, 64, 4, 50257, 256));
        m.put("mini", of(4, 128, 4, 50257, 256));
        m.put("small", of(4, 256, 4, 50257, 512));
        return Map.copyOf(m);
    }

    public static GptConfig preset(String name) {
        GptConfig c = PRESETS.get(name.toLowerCase());
        if (c == null) throw new WaferException("unknown preset '" + name + "'; known: " + List.copyOf(PRESETS.keySet()).stream().sorted().toList());
        return c;
    }

    public static GptConfig read(Path file) {
        try {
            return fromJson(JSON.readTree(Files.readString(file)), file.toString());
        } catch (NoSuchFileException e) {
            throw new WaferException("config: no file " + file);
        } catch (IOException e) {
            throw new WaferException("config: cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    public static GptConfig fromJson(JsonNode n, String where) {
        if (n == null || !n.isObject()) throw new WaferException(where + ": config must be a JSON object");
        String type = n.path("model_type").asText("gpt2");
        boolean btlm = type.equals("btlm");
        if (!btlm && !type.equals("gpt2")) throw new WaferException(where + ": model_type '" + type + "' is not supported (only gpt2 and btlm)");
        Map<String, JsonNode> off = new java.util.TreeMap<>(OFF);
        if (!btlm) off.putAll(MUP_OFF);
        List<String> refused = new java.util.ArrayList<>();
        off.forEach((key, dflt) -> {
            JsonNode v = n.get(key);
            if (v != null && !(v.equals(dflt) || v.isNumber() && dflt.isNumber() && v.doubleValue() == dflt.doubleValue()))
                refused.add(key + " " + v + " (Wafer computes only " + dflt
                        + (MUP_OFF.containsKey(key) ? " for model_type " + type + "; µP's scales are model_type btlm's)" : ")"));
        });
        if (!refused.isEmpty()) throw new WaferException(where + ": not supported: " + String.join(", ", refused));
        Map<String, JsonNode> extra = new LinkedHashMap<>();
        Set<String> interpreted = Set.of("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                "activation_function", "layer_norm_epsilon", "scale_attn_weights", "tie_word_embeddings",
                "initializer_range", "mup_embeddings_scale", "mup_output_alpha", "mup_width_scale", "mup_scale_qk_dot_by_d",
                "position_embedding_type", "alibi_scaling",
                "quantization_config"); // the weights' int8 scheme: Checkpoint reads it with the weights (a save writes its own)
        List<String> unknown = new java.util.ArrayList<>();
        n.properties().forEach(e -> {
            if (interpreted.contains(e.getKey())) return;
            if (!KNOWN_PASSIVE.contains(e.getKey()) && !OFF.containsKey(e.getKey())) unknown.add(e.getKey());
            extra.put(e.getKey(), e.getValue());
        });
        if (!unknown.isEmpty())
            System.err.println("wafer: warning: " + where + ": keys not used by Wafer (kept as they are): " + unknown);
        int nEmbd = intKey(n, "n_embd", 768, where);
        JsonNode inner = n.get("n_inner");
        int nInner = inner == null || inner.isNull() ? 4 * nEmbd : intKey(n, "n_inner", 0, where);
        String act = n.path("activation_function").asText("gelu_new");
        return new GptConfig(intKey(n, "vocab_size", 50257, where), intKey(n, "n_positions", 1024, where), nEmbd,
                intKey(n, "n_layer", 12, where), intKey(n, "n_head", 12, where), nInner,
                Activation.parse(act, where), (float) n.path("layer_norm_epsilon").asDouble(1e-5),
                n.path("scale_attn_weights").asBoolean(true), n.path("tie_word_embeddings").asBoolean(true),
                (float) n.path("initializer_range").asDouble(0.02), extra,
                new MuP(number(n, "mup_embeddings_scale", where), number(n, "mup_output_alpha", where),
                        number(n, "mup_width_scale", where), n.path("mup_scale_qk_dot_by_d").asBoolean(false)));
    }

    /** A µP factor (default 1). */
    private static double number(JsonNode n, String key, String where) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return 1;
        if (!v.isNumber()) throw new WaferException(where + ": " + key + " must be a number, got " + v);
        return v.doubleValue();
    }

    private static int intKey(JsonNode n, String key, int dflt, String where) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.canConvertToInt() || !v.isIntegralNumber()) throw new WaferException(where + ": " + key + " must be an integer, got " + v);
        return v.intValue();
    }

    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        if (mup.active()) { // as Cerebras' µP checkpoints: BTLM's config and code, which Hugging Face loads with trust_remote_code
            o.putArray("architectures").add("BTLMLMHeadModel");
            o.put("model_type", "btlm");
            o.putObject("auto_map").put("AutoConfig", "cerebras/btlm-3b-8k-base--configuration_btlm.BTLMConfig")
                    .put("AutoModel", "cerebras/btlm-3b-8k-base--modeling_btlm.BTLMModel")
                    .put("AutoModelForCausalLM", "cerebras/btlm-3b-8k-base--modeling_btlm.BTLMLMHeadModel");
        } else {
            o.putArray("architectures").add("GPT2LMHeadModel");
            o.put("model_type", "gpt2");
        }
        extra.forEach(o::set); // may override architectures (e.g. a classification head)
        o.put("vocab_size", vocabSize);
        o.put("n_positions", nPositions);
        o.put("n_embd", nEmbd);
        o.put("n_layer", nLayer);
        o.put("n_head", nHead);
        if (nInner == 4 * nEmbd) o.putNull("n_inner"); else o.put("n_inner", nInner);
        o.put("activation_function", activation.hfName);
        o.put("layer_norm_epsilon", (double) layerNormEpsilon);
        o.put("scale_attn_weights", scaleAttnWeights);
        o.put("tie_word_embeddings", tieWordEmbeddings);
        o.put("initializer_range", (double) initializerRange);
        if (mup.active()) {
            o.put("position_embedding_type", "learned");
            o.put("mup_embeddings_scale", mup.embeddingsScale());
            o.put("mup_output_alpha", mup.outputAlpha());
            o.put("mup_width_scale", mup.widthScale());
            o.put("mup_scale_qk_dot_by_d", mup.scaleQkDotByD());
        }
        return o;
    }

    public void write(Path file) throws IOException {
        ai.wafer.io.AtomicFiles.writeString(file, JSON.writeValueAsString(toJson()) + "\n");
    }
}
