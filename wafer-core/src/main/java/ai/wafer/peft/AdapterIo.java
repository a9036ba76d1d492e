package ai.wafer.peft;

import ai.wafer.WaferException;
import ai.wafer.io.AtomicFiles;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Adapters in PEFT's directory layout: {@code adapter_config.json} and {@code adapter_model.safetensors}
 * with keys like {@code base_model.model.transformer.h.0.attn.c_attn.lora_A.weight}. A fine-tuned head is
 * saved as PEFT saves modules_to_save ({@code base_model.model.classifier.weight}). Wafer's own facts
 * (labels, base fingerprint) go into a separate {@code wafer_adapter.json}, so adapter_config.json holds
 * only keys PEFT knows.
 */
public final class AdapterIo {
    private AdapterIo() {}

    public static final String CONFIG = "adapter_config.json", WEIGHTS = "adapter_model.safetensors", WAFER = "wafer_adapter.json";
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What an adapter directory says besides its tensors. */
    public record Info(String peftType, String taskType, JsonNode methodConfig, ObjectNode wafer) {}

    /**
     * Writes the adapter: {@code method}'s tensors, {@code head}'s tensors (HF names, e.g. classifier.weight),
     * adapter_config.json ({@code taskType}: PEFT's TOKEN_CLS, SEQ_CLS or CAUSAL_LM) and wafer_adapter.json.
     */
    public static void save(Path dir, Method method, String taskType, String baseName, List<Parameter> head, ObjectNode wafer) {
        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("peft_type", method.peftType());
        cfg.put("task_type", taskType);
        cfg.put("base_model_name_or_path", baseName);
        cfg.put("inference_mode", true);
        cfg.putNull("revision");
        if (head.isEmpty()) cfg.putNull("modules_to_save");
        else cfg.putArray("modules_to_save").add(head.getFirst().name.substring(0, head.getFirst().name.indexOf('.')));
        cfg.setAll(method.config());
        Map<String, SafeTensors.Tensor> out = new LinkedHashMap<>();
        method.tensors().forEach((k, p) -> out.put(k, Checkpoint.tensor(p)));
        for (Parameter p : head) out.put("base_model.model." + p.name, Checkpoint.tensor(p));
        try {
            Files.createDirectories(dir);
            AtomicFiles.writeString(dir.resolve(CONFIG), JSON.writeValueAsString(cfg) + "\n");
            AtomicFiles.writeString(dir.resolve(WAFER), JSON.writeValueAsString(wafer) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + dir + ": " + e.getMessage(), e);
        }
        SafeTensors.write(dir.resolve(WEIGHTS), out);
    }

    public static boolean isAdapter(Path dir) { return Files.isRegularFile(dir.resolve(CONFIG)); }

    public static Info info(Path dir) {
        Path f = dir.resolve(CONFIG);
        if (!Files.isRegularFile(f)) throw new WaferException(dir + ": not an adapter directory (no " + CONFIG + ")");
        try {
            JsonNode cfg = JSON.readTree(Files.readString(f));
            Path w = dir.resolve(WAFER);
            ObjectNode wafer = Files.isRegularFile(w) ? (ObjectNode) JSON.readTree(Files.readString(w)) : JSON.createObjectNode();
            return new Info(cfg.path("peft_type").asText(""), cfg.path("task_type").asText("CAUSAL_LM"), cfg, wafer);
        } catch (IOException | ClassCastException e) {
            throw new WaferException(dir + ": cannot read the adapter's JSON files: " + e.getMessage());
        }
    }

    /** A method of the adapter's kind and shape for {@code model}, not yet filled or attached. */
    public static Method create(Gpt model, Info info, Path dir) {
        String where = dir.resolve(CONFIG).toString();
        JsonNode c = info.methodConfig();
        return switch (info.peftType()) {
            case "LORA" -> new Lora(model, Lora.configFrom(c, where), 0);
            case "IA3" -> new Ia3(model);
            case "PREFIX_TUNING" -> {
                if (c.path("prefix_projection").asBoolean(false))
                    throw new WaferException(where + ": prefix tuning with prefix_projection is not supported");
                int layers = c.path("num_layers").asInt(-1), dim = c.path("token_dim").asInt(-1);
                if (layers != model.config.nLayer() || dim != model.config.nEmbd())
                    throw new WaferException(where + ": a prefix for " + layers + " layers of width " + dim
                            + ", but the base model has " + model.config.nLayer() + " of width " + model.config.nEmbd()
                            + ": this adapter belongs to another base model");
                yield new PrefixTuning(model, c.path("num_virtual_tokens").asInt(0), 0);
            }
            case "WAFER_BOTTLENECK" -> new Bottleneck(model, c.path("bottleneck_size").asInt(0), 0);
            default -> throw new WaferException(where + ": peft_type '" + info.peftType()
                    + "' is not supported (LORA, IA3, PREFIX_TUNING, WAFER_BOTTLENECK)");
        };
    }

    /**
     * Fills {@code method}'s tensors and {@code head}'s (if the file has them) from the adapter's weights.
     * A missing tensor, an unexpected one, or a shape this base model does not give is an error naming it.
     */
    public static void loadTensors(Path dir, Method method, List<Parameter> head) {
        Map<String, Parameter> want = new LinkedHashMap<>(method.tensors());
        for (Parameter p : head) want.put("base_model.model." + p.name, p);
        try (SafeTensors.Reader r = SafeTensors.open(dir.resolve(WEIGHTS))) {
            TreeSet<String> unexpected = new TreeSet<>(r.names());
            unexpected.removeAll(want.keySet());
            if (!unexpected.isEmpty())
                throw new WaferException(dir + ": adapter tensors this model has no place for: " + unexpected
                        + " (an adapter for another base model or task?)");
            for (var e : want.entrySet()) {
                Parameter p = e.getValue();
                boolean isHead = head.contains(p);
                if (!r.contains(e.getKey())) {
                    if (isHead) throw new WaferException(dir + ": the adapter has no " + e.getKey() + " (the fine-tuned head)");
                    throw new WaferException(dir + ": the adapter lacks tensor " + e.getKey());
                }
                long[] have = r.info(e.getKey()).shape(), need = Arrays.stream(p.shape).asLongStream().toArray();
                if (!Arrays.equals(have, need))
                    throw new WaferException(dir + ": tensor " + e.getKey() + " has shape " + Arrays.toString(have)
                            + " but this base model needs " + Arrays.toString(need) + ": the adapter belongs to another base model");
                r.read(e.getKey(), p.data, p.off);
            }
        }
    }
}
