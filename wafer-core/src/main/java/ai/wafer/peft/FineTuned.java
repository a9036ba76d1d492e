package ai.wafer.peft;

import ai.wafer.WaferException;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Head;
import ai.wafer.model.Parameter;
import ai.wafer.model.SequenceClassifier;
import ai.wafer.model.SequenceClassifier.Problem;
import ai.wafer.model.Task;
import ai.wafer.model.TokenClassifier;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A fine-tuned model as it is saved and loaded: the GPT (with the method's hooks, if any), the task, its labels and
 * head, and the method's own tensors. The one loader and saver of fine-tuned models: fine-tuning
 * ({@code finetune.FinetuneModel}) trains one, evaluation and inference ({@code generate}, {@code serve}) load one,
 * so both read the same files the same way.
 *
 * <p>On disk it is either a whole Hugging Face model directory (config.json naming GPT2For*Classification with its
 * labels, the head in model.safetensors) or, for methods that add tensors, a PEFT adapter directory next to its base.
 */
public class FineTuned {
    private static final ObjectMapper JSON = new ObjectMapper();

    public final Gpt gpt;
    public final Task task;
    /** Label names by id (empty for causal LM). */
    public final List<String> labels;
    public final Peft.Spec spec;
    /** The method's own tensors, or null for full, BitFit and top-k. */
    public final Method method;
    /** The classification head, or null for causal LM (whose head is the tied wte). */
    public final Head head;
    public final int padId;
    /** The base model's fingerprint before any training: adapters record it, and loading checks it. */
    public final String baseFingerprint;
    /** Tokens per example it was fine-tuned with (saved with it, so evaluation scores as training did); 0 unknown. */
    public int trainedMaxLength;
    /** Sequence classification: the data fields it was fine-tuned on (saved with it, evaluation's default). */
    public TextClassificationReader.Columns columns = TextClassificationReader.Columns.DEFAULT;

    public FineTuned(Gpt gpt, Task task, List<String> labels, Peft.Spec spec, Method method, Head head, int padId,
                     String baseFingerprint) {
        this.gpt = gpt;
        this.task = task;
        this.labels = List.copyOf(labels);
        this.spec = spec;
        this.method = method;
        this.head = head;
        this.padId = padId;
        this.baseFingerprint = baseFingerprint;
    }

    public TokenClassifier tokenHead() { return head instanceof TokenClassifier t ? t : null; }

    public SequenceClassifier seqHead() { return head instanceof SequenceClassifier s ? s : null; }

    /** What a sequence classifier's outputs mean; single label for the other tasks. */
    public Problem problem() { return head instanceof SequenceClassifier s ? s.problem : Problem.SINGLE_LABEL; }

    /** The head's tensors (empty for causal LM). */
    public List<Parameter> headParameters() { return head == null ? List.of() : head.parameters(); }

    // ------------------------------------------------------------------ loading

    /**
     * Loads a fine-tuned model: {@code model} is either a whole fine-tuned model directory (task and labels from its
     * config.json), read onto the heap, or, with {@code adapter}, the base model the adapter directory was trained on,
     * mapped from its file (a shared base stays one page-cache copy) with the adapter's hooks attached and dropout off.
     * {@code task} may be null to take the saved one.
     */
    public static FineTuned load(Path model, Path adapter, Task task) {
        if (adapter == null && AdapterIo.isAdapter(model))
            throw new WaferException(model + " is an adapter directory; give the base model as --model and this as --adapter");
        GptConfig cfg = GptConfig.read(model.resolve("config.json"));
        if (adapter == null) {
            cfg.requireHeap(model.toString());
            Gpt gpt = new Gpt(cfg);
            Task saved = savedTask(cfg);
            Task t = task == null ? saved : task;
            if (t != saved)
                throw new WaferException(model + ": config.json says " + saved.hfArchitecture + ", not a " + t + " model");
            List<String> labels = t.classifies() ? labelsOf(cfg, model) : List.of();
            JsonNode problem = cfg.extra().get("problem_type");
            FineTuned ft = new FineTuned(gpt, t, labels, Peft.Spec.of(Peft.Kind.FULL), null,
                    Head.create(t, cfg, labels, 0x5eed, problemOf(problem == null ? null : problem.asText(), labels)), padOf(cfg), "");
            ft.trainedMaxLength = cfg.extra().containsKey("wafer_max_length") ? cfg.extra().get("wafer_max_length").asInt() : 0;
            if (cfg.extra().containsKey("wafer_columns")) ft.columns = columnsOf(cfg.extra().get("wafer_columns"));
            var read = Checkpoint.load(gpt, model, ft.headByName());
            if (t.classifies() && read.size() != ft.headParameters().size())
                throw new WaferException(model + ": no trained " + ft.head.parameters().getFirst().name.split("\\.")[0]
                        + " head in the weights (fine-tune it first)");
            return ft;
        }
        Gpt gpt = Checkpoint.loadFrozen(model); // the shared base stays a mapping of its file
        FineTuned ft = onBase(gpt, Fingerprint.of(gpt), model, adapter, task);
        ft.method.attach(gpt);
        return ft;
    }

    /**
     * The adapter in {@code adapter}, for {@code base} (loaded from {@code model}, whose fingerprint before any
     * conversion is {@code have}), with dropout off and not attached: several such share one base
     * ({@link MixedAdapters}).
     */
    public static FineTuned onBase(Gpt gpt, String have, Path model, Path adapter, Task task) {
        GptConfig cfg = gpt.config;
        AdapterIo.Info info = AdapterIo.info(adapter);
        Task saved = Task.parse(info.wafer().path("task").asText(info.taskType()));
        Task t = task == null ? saved : task;
        if (t != saved) throw new WaferException(adapter + ": the adapter was trained for " + saved + ", not " + t);
        String fp = info.wafer().path("base_fingerprint").asText("");
        if (!fp.isEmpty() && !fp.equals(have))
            throw new WaferException(adapter + ": this adapter was trained on another base model (base fingerprint " + fp
                    + "; " + model + " has " + have + ")");
        List<String> labels = new ArrayList<>();
        info.wafer().path("labels").forEach(n -> labels.add(n.asText()));
        Method m = AdapterIo.create(gpt, info, adapter);
        for (Parameter p : gpt.parameters()) p.setTrainable(false);
        if (t.classifies() && labels.isEmpty()) labels.addAll(labelsOf(cfg, model));
        Peft.Kind kind = switch (info.peftType()) {
            case "LORA" -> Peft.Kind.LORA;
            case "IA3" -> Peft.Kind.IA3;
            case "PREFIX_TUNING" -> Peft.Kind.PREFIX;
            default -> Peft.Kind.ADAPTER;
        };
        Peft.Spec spec = m instanceof Lora l ? new Peft.Spec(kind, l.cfg, 0, 0, 0) : Peft.Spec.of(kind);
        List<String> used = t.classifies() ? labels : List.of();
        FineTuned ft = new FineTuned(gpt, t, used, spec, m,
                Head.create(t, cfg, used, 0x5eed, problemOf(info.wafer().path("problem_type").textValue(), used)),
                info.wafer().path("pad_token_id").asInt(padOf(cfg)), fp);
        ft.trainedMaxLength = info.wafer().path("max_length").asInt(0);
        if (info.wafer().has("columns")) ft.columns = columnsOf(info.wafer().get("columns"));
        AdapterIo.loadTensors(adapter, m, ft.headParameters());
        m.setTraining(false);
        return ft;
    }

    /**
     * The task {@code model} (or, with {@code adapter}, the adapter) was fine-tuned for, read from its JSON files alone;
     * null when it is neither a model directory nor an adapter one.
     */
    public static Task savedTask(Path model, Path adapter) {
        if (adapter != null) {
            if (!AdapterIo.isAdapter(adapter)) return null;
            AdapterIo.Info info = AdapterIo.info(adapter);
            return Task.parse(info.wafer().path("task").asText(info.taskType()));
        }
        return isModelDir(model) ? savedTask(GptConfig.read(model.resolve("config.json"))) : null;
    }

    /** The task config.json's architecture names; a plain GPT-2 (or none named) is causal LM. */
    static Task savedTask(GptConfig cfg) {
        JsonNode arch = cfg.extra().get("architectures");
        String a = arch != null && arch.isArray() && !arch.isEmpty() ? arch.get(0).asText() : "GPT2LMHeadModel";
        for (Task t : Task.values()) if (t.hfArchitecture.equals(a)) return t;
        return Task.CAUSAL_LM;
    }

    static List<String> labelsOf(GptConfig cfg, Path where) {
        JsonNode id2label = cfg.extra().get("id2label");
        if (id2label == null || !id2label.isObject() || id2label.isEmpty())
            throw new WaferException(where + ": config.json has no id2label, so the labels are unknown");
        String[] out = new String[id2label.size()];
        id2label.properties().forEach(e -> {
            int i;
            try { i = Integer.parseInt(e.getKey()); } catch (NumberFormatException x) { i = -1; }
            if (i < 0 || i >= out.length) throw new WaferException(where + ": id2label key '" + e.getKey() + "' is not an id 0.." + (out.length - 1));
            out[i] = e.getValue().asText();
        });
        return List.of(out);
    }

    /** A saved problem_type; absent, Hugging Face's guess for a model given no labels: one output is regression. */
    static Problem problemOf(String saved, List<String> labels) {
        return saved != null ? Problem.parse(saved) : labels.size() == 1 ? Problem.REGRESSION : Problem.SINGLE_LABEL;
    }

    static TextClassificationReader.Columns columnsOf(JsonNode c) {
        return new TextClassificationReader.Columns(c.path("text").asText("text"), c.path("text_pair").textValue(), c.path("label").asText("label"));
    }

    private ObjectNode columnsJson() {
        ObjectNode c = JSON.createObjectNode().put("text", columns.text()).put("label", columns.label());
        return columns.pair() == null ? c : c.put("text_pair", columns.pair());
    }

    static int padOf(GptConfig cfg) {
        JsonNode p = cfg.extra().get("pad_token_id");
        if (p != null && p.canConvertToInt()) return p.intValue();
        JsonNode e = cfg.extra().get("eos_token_id");
        return e != null && e.canConvertToInt() ? e.intValue() : cfg.vocabSize() - 1;
    }

    /** True when dir holds a model directory (not an adapter). */
    public static boolean isModelDir(Path dir) { return Files.isRegularFile(dir.resolve("config.json")); }

    // ------------------------------------------------------------------ inference

    /** Whether an engine that runs plain GPT-2 blocks can run this model: bottleneck adapters add layers it lacks. */
    public boolean runsAsPlainGpt() { return method == null || method instanceof Lora || method instanceof Ia3 || method instanceof PrefixTuning; }

    /**
     * Readies the model for an engine that runs plain GPT-2 blocks: LoRA and (IA)3 are merged into the weights (no
     * extra cost per token), a prefix is unhooked and returned, to become the first positions of every KV cache
     * (null when there is none). Afterwards the model has no hooks.
     */
    public PrefixTuning mergeForInference() {
        if (!runsAsPlainGpt()) throw new IllegalStateException("a " + spec.kind().cliName() + " adapter adds layers");
        PrefixTuning prefix = null;
        switch (method) {
            case Lora l -> l.merge(gpt);
            case Ia3 i -> i.merge(gpt);
            case PrefixTuning pt -> { prefix = pt; gpt.clearHooks(); }
            case null, default -> {}
        }
        return prefix;
    }

    // ------------------------------------------------------------------ saving

    private Map<String, Parameter> headByName() {
        Map<String, Parameter> m = new LinkedHashMap<>();
        for (Parameter p : headParameters()) m.put(p.name, p);
        return m;
    }

    /** config.json as Hugging Face's task class reads it: architectures, labels, pad_token_id. */
    GptConfig taskConfig() {
        GptConfig c = gpt.config;
        ObjectNode id2label = JSON.createObjectNode(), label2id = JSON.createObjectNode();
        for (int i = 0; i < labels.size(); i++) { id2label.put(Integer.toString(i), labels.get(i)); label2id.put(labels.get(i), i); }
        c = c.withExtra("architectures", JSON.createArrayNode().add(task.hfArchitecture));
        if (task.classifies()) {
            c = c.withExtra("id2label", id2label).withExtra("label2id", label2id)
                    .withExtra("num_labels", JSON.getNodeFactory().numberNode(labels.size()));
        }
        if (task == Task.SEQUENCE_CLASSIFICATION)
            c = c.withExtra("problem_type", JSON.getNodeFactory().textNode(problem().hfName)).withExtra("wafer_columns", columnsJson());
        return c.withExtra("pad_token_id", JSON.getNodeFactory().numberNode(padId));
    }

    /**
     * Saves into {@code dir}: a whole Hugging Face model directory (config.json with the labels, model.safetensors
     * with the head) for full, BitFit and top-k; a PEFT adapter directory for the others ({@code baseName}: where the
     * base model lives, for base_model_name_or_path).
     */
    public void save(Path dir, String baseName) {
        if (method == null) {
            saveWhole(dir);
            return;
        }
        Path base = Path.of(baseName).toAbsolutePath().normalize();
        ObjectNode w = JSON.createObjectNode();
        w.put("method", spec.kind().cliName());
        w.put("task", task.cliName);
        var ls = w.putArray("labels");
        labels.forEach(ls::add);
        w.put("pad_token_id", padId);
        w.put("base_fingerprint", baseFingerprint);
        w.put("base_n_layer", gpt.config.nLayer());
        w.put("base_n_embd", gpt.config.nEmbd());
        w.put("base_vocab_size", gpt.config.vocabSize());
        // where the base is from the adapter's own directory, so that the pair moves together and loads without --model
        if (Files.isDirectory(base)) w.put("base_path", dir.toAbsolutePath().normalize().relativize(base).toString());
        if (trainedMaxLength > 0) w.put("max_length", trainedMaxLength);
        if (task == Task.SEQUENCE_CLASSIFICATION) { w.put("problem_type", problem().hfName); w.set("columns", columnsJson()); }
        AdapterIo.save(dir, method, task.peftTaskType, baseName, headParameters(), w);
    }

    /**
     * Saves as a whole Hugging Face model directory (config.json with the task's architecture and labels, weights
     * with the head), whatever the method: after {@link Lora#merge}, a LoRA model saved so needs no PEFT to load.
     */
    public void saveWhole(Path dir) {
        for (int l = 0; l < gpt.config.nLayer(); l++)
            if (!gpt.hooks(l).isEmpty()) throw new IllegalStateException("the model has unmerged " + spec.kind().cliName() + " hooks");
        GptConfig c = taskConfig();
        if (trainedMaxLength > 0) c = c.withExtra("wafer_max_length", JSON.getNodeFactory().numberNode(trainedMaxLength));
        Checkpoint.save(gpt, c, headByName(), dir);
    }

    /**
     * The base model of an adapter saved by Wafer, when no --model names it: its {@code base_path} (relative to the
     * adapter's directory), else {@code base_model_name_or_path} as a path (as given, then from the adapter's directory).
     */
    public static Path baseOf(Path adapter) {
        AdapterIo.Info info = AdapterIo.info(adapter);
        List<Path> tried = new ArrayList<>();
        String rel = info.wafer().path("base_path").asText(""), name = info.methodConfig().path("base_model_name_or_path").asText("");
        if (!rel.isEmpty()) tried.add(adapter.resolve(rel).normalize());
        if (!name.isEmpty()) { tried.add(Path.of(name)); tried.add(adapter.resolve(name).normalize()); }
        for (Path p : tried) if (isModelDir(p)) return p;
        throw new WaferException(adapter + ": give the base model as --model (the adapter names " + (tried.isEmpty() ? "none" : tried)
                + ", and none of these is a model directory)");
    }
}
