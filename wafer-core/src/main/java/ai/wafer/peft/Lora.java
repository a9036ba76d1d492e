package ai.wafer.peft;

import ai.wafer.WaferException;
import ai.wafer.model.BlockHooks;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * LoRA (Hu et al., 2021) on any of the four block linears: c_attn, attn.c_proj, c_fc, mlp.c_proj
 * (PEFT's target_modules names, matched against GPT-2 module paths by suffix).
 */
public final class Lora implements Method {
    public static final List<String> TARGETS = List.of("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj");

    public record Config(int r, float alpha, float dropout, List<String> targets) {
        public Config {
            if (r < 1) throw new WaferException("LoRA rank r must be at least 1, got " + r);
            if (!(dropout >= 0 && dropout < 1)) throw new WaferException("LoRA dropout must be in [0, 1), got " + dropout);
            if (targets.isEmpty()) throw new WaferException("LoRA needs at least one target module");
            for (String t : targets)
                if (!TARGETS.contains(t)) throw new WaferException("unknown LoRA target module '" + t + "' (known: " + TARGETS + ")");
            targets = List.copyOf(targets);
        }

        public static Config defaults() { return new Config(8, 16, 0.05f, List.of("c_attn")); }
    }

    public final Config cfg;
    /** [layer][target index in TARGETS], null where not targeted. */
    final LoraLinear[][] layers;
    private final Map<String, Parameter> tensors = new LinkedHashMap<>();
    private boolean merged;

    public Lora(Gpt model, Config cfg, long seed) {
        this.cfg = cfg;
        int L = model.config.nLayer();
        layers = new LoraLinear[L][TARGETS.size()];
        SplittableRandom rng = new SplittableRandom(seed);
        LoraLinear.Scratch scratch = new LoraLinear.Scratch();
        for (int l = 0; l < L; l++) {
            Gpt.Block b = model.h[l];
            for (int t = 0; t < TARGETS.size(); t++) {
                if (!cfg.targets().contains(TARGETS.get(t))) continue;
                Parameter w = weight(b, t);
                String name = "h." + l + "." + modulePath(t);
                LoraLinear ll = new LoraLinear(name, w.shape[0], w.shape[1], cfg.r(), cfg.alpha(), cfg.dropout(), rng, scratch);
                layers[l][t] = ll;
                tensors.put(Method.key(ll.loraA.name), ll.loraA);
                tensors.put(Method.key(ll.loraB.name), ll.loraB);
            }
        }
    }

    /** The module path inside a block: c_attn lives under attn, c_fc under mlp. */
    static String modulePath(int t) {
        return switch (TARGETS.get(t)) {
            case "c_attn" -> "attn.c_attn";
            case "c_fc" -> "mlp.c_fc";
            default -> TARGETS.get(t);
        };
    }

    private static Parameter weight(Gpt.Block b, int t) {
        return switch (t) {
            case 0 -> b.attnW();
            case 1 -> b.attnProjW();
            case 2 -> b.fcW();
            default -> b.mlpProjW();
        };
    }

    @Override public String peftType() { return "LORA"; }
    @Override public Map<String, Parameter> tensors() { return tensors; }

    @Override public ObjectNode config() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("r", cfg.r());
        o.put("lora_alpha", cfg.alpha());
        o.put("lora_dropout", cfg.dropout());
        var t = o.putArray("target_modules");
        cfg.targets().forEach(t::add);
        o.put("fan_in_fan_out", true); // GPT-2's Conv1D stores weights [in, out]
        o.put("bias", "none");
        o.put("init_lora_weights", true);
        o.put("use_rslora", false);
        o.put("use_dora", false);
        return o;
    }

    public static Config configFrom(com.fasterxml.jackson.databind.JsonNode o, String where) {
        List<String> targets = new ArrayList<>();
        var tm = o.path("target_modules");
        if (tm.isTextual()) throw new WaferException(where + ": target_modules as a regular expression is not supported; give a list");
        tm.forEach(n -> targets.add(n.asText()));
        if (o.path("use_dora").asBoolean(false) || o.path("use_rslora").asBoolean(false))
            throw new WaferException(where + ": DoRA / rsLoRA adapters are not supported");
        if (!o.path("layers_to_transform").isMissingNode() && !o.path("layers_to_transform").isNull())
            throw new WaferException(where + ": layers_to_transform is not supported");
        return new Config(o.path("r").asInt(8), (float) o.path("lora_alpha").asDouble(8), (float) o.path("lora_dropout").asDouble(0), targets);
    }

    @Override public void attach(Gpt model) {
        if (merged) throw new IllegalStateException("this LoRA is merged into the weights already");
        for (int l = 0; l < layers.length; l++) {
            BlockHooks k = model.hooks(l);
            k.cAttn = layers[l][0];
            k.attnProj = layers[l][1];
            k.cFc = layers[l][2];
            k.mlpProj = layers[l][3];
        }
    }

    @Override public void beginMicroBatch(long tokenRowsBefore) {
        for (LoraLinear[] row : layers) for (LoraLinear ll : row) if (ll != null) ll.beginMicroBatch(tokenRowsBefore);
    }

    /** The adapted layers, in model order. */
    private List<LoraLinear> adapted() {
        return java.util.Arrays.stream(layers).flatMap(java.util.Arrays::stream).filter(java.util.Objects::nonNull).toList();
    }

    @Override public long[] randomState() { return adapted().stream().mapToLong(LoraLinear::seedsDrawn).toArray(); }

    @Override public void skipRandom(long[] state) {
        List<LoraLinear> all = adapted();
        if (state.length != all.size()) throw new IllegalArgumentException(state.length + " mask streams saved for " + all.size() + " LoRA layers");
        for (int i = 0; i < state.length; i++) all.get(i).skipSeeds(state[i]);
    }

    @Override public void setTraining(boolean on) {
        for (LoraLinear[] row : layers) for (LoraLinear ll : row) if (ll != null) ll.training = on;
    }

    /**
     * Adds every update into its base weight and removes the hooks: the same function, at the base
     * model's cost. The model is then a plain GPT-2 (saved as such, Hugging Face's merge_and_unload).
     */
    public void merge(Gpt model) {
        for (int l = 0; l < layers.length; l++) {
            for (int t = 0; t < TARGETS.size(); t++) if (layers[l][t] != null) layers[l][t].mergeInto(weight(model.h[l], t));
            BlockHooks k = model.hooks(l);
            k.cAttn = k.attnProj = k.cFc = k.mlpProj = null;
        }
        merged = true;
    }
}
