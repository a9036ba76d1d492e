package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Head;
import ai.wafer.model.Parameter;
import ai.wafer.model.TokenClassifier;
import ai.wafer.model.SequenceClassifier;
import ai.wafer.model.Task;
import ai.wafer.peft.AdapterIo;
import ai.wafer.peft.Fingerprint;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Method;
import ai.wafer.peft.Peft;
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
 * A GPT model set up for one fine-tuning task: the base model (its parameters frozen or trainable as the
 * method says), the method's own tensors (LoRA, (IA)3, prefix, adapters) hooked into its blocks, and the
 * task's head (token or sequence classification; the tied LM head for causal LM).
 *
 * <p>Batches are padded on either side ({@link Batcher}): right padding needs no mask (a causal token never
 * attends to the padding after it); left padding passes each row's start to the model, which keeps real tokens
 * off the pads and numbers their positions from 0. Padded positions carry label -100 and sequence
 * classification reads the last real token, so both sides give the same losses and predictions.
 */
public final class FinetuneModel {
    private static final ObjectMapper JSON = new ObjectMapper();

    public final Gpt gpt;
    public final Task task;
    /** Label names by id (empty for causal LM). */
    public final List<String> labels;
    public final Peft.Spec spec;
    /** The method's own tensors, or null for full, BitFit and top-k. */
    public final Method method;
    public final TokenClassifier tokenHead;
    public final SequenceClassifier seqHead;
    public final int padId;
    /** The base model's fingerprint before any training: adapters record it. */
    public final String baseFingerprint;

    private float[] dhidden = new float[0];
    private int[] shifted = new int[0];
    private int lastT, valid;

    private FinetuneModel(Gpt gpt, Task task, List<String> labels, Peft.Spec spec, Method method, int padId, long seed,
                          String baseFingerprint) {
        this.gpt = gpt;
        this.task = task;
        this.labels = List.copyOf(labels);
        this.spec = spec;
        this.method = method;
        this.padId = padId;
        this.baseFingerprint = baseFingerprint;
        int C = gpt.config.nEmbd();
        float std = gpt.config.initializerRange();
        if (task.classifies() && labels.size() < 2 && task == Task.SEQUENCE_CLASSIFICATION)
            throw new WaferException("sequence classification needs at least 2 labels, the training file has " + labels.size());
        if (task.classifies() && labels.isEmpty()) throw new WaferException(task + " needs labels, the training file has none");
        tokenHead = task == Task.TOKEN_CLASSIFICATION ? new TokenClassifier(C, labels.size(), std, seed ^ 0x5eed) : null;
        seqHead = task == Task.SEQUENCE_CLASSIFICATION ? new SequenceClassifier(C, labels.size(), std, seed ^ 0x5eed) : null;
    }

    /**
     * Sets {@code base} up for fine-tuning on {@code task} with {@code spec}'s method: freezes what the method
     * does not train, attaches its hooks, and adds a fresh head for {@code labels}.
     */
    public static FinetuneModel create(Gpt base, Task task, List<String> labels, Peft.Spec spec, int padId, long seed) {
        String fp = Fingerprint.of(base);
        Method m = Peft.apply(base, spec, seed);
        return new FinetuneModel(base, task, task.classifies() ? labels : List.of(), spec, m, padId, seed, fp);
    }

    public Head head() { return tokenHead != null ? tokenHead : seqHead; }

    /** The head's tensors (empty for causal LM). */
    public List<Parameter> headParameters() { return head() == null ? List.of() : head().parameters(); }

    /** Base, method and head parameters, each once: the optimiser takes the trainable ones. */
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(gpt.parameters());
        if (method != null) all.addAll(method.tensors().values());
        all.addAll(headParameters());
        return all;
    }

    /** "trainable 294,912 of 124,734,720 (0.24%)". */
    public String trainableShare() { return Peft.share(parameters()); }

    public void setTraining(boolean on) { if (method != null) method.setTraining(on); }

    /**
     * Forward pass and summed loss of a batch; {@link #validTargets()} says over how many targets.
     * Causal LM shifts the labels: position t predicts label t + 1.
     */
    public double forward(Batcher.Batch b) {
        int B = b.size(), T = b.length(), BT = B * T;
        lastT = T;
        switch (task) {
            case TOKEN_CLASSIFICATION -> {
                float[] hidden = gpt.forwardHidden(b.ids(), b.starts(), B, T);
                double s = tokenHead.loss(hidden, b.labels(), BT);
                valid = tokenHead.validTargets();
                return s;
            }
            case SEQUENCE_CLASSIFICATION -> {
                float[] hidden = gpt.forwardHidden(b.ids(), b.starts(), B, T);
                double s = seqHead.loss(hidden, b.lengths(), b.starts(), b.classes(), B, T);
                valid = seqHead.validTargets();
                return s;
            }
            default -> {
                if (shifted.length < BT) shifted = new int[BT];
                for (int r = 0; r < B; r++)
                    for (int t = 0; t < T; t++) shifted[r * T + t] = t + 1 < T ? b.labels()[r * T + t + 1] : Example.IGNORE;
                float mean = gpt.forward(b.ids(), shifted, b.starts(), B, T);
                int v = 0;
                for (int i = 0; i < BT; i++) if (shifted[i] >= 0) v++;
                valid = v;
                return (double) mean * v;
            }
        }
    }

    public int validTargets() { return valid; }

    /** Adds the gradient of scale * (summed loss of the last forward) to every trainable tensor. */
    public void backward(float scale) {
        if (task == Task.CAUSAL_LM) { gpt.backward(scale); return; }
        int C = gpt.config.nEmbd(), BT = gpt.activations().batch() * lastT;
        if (dhidden.length < BT * C) dhidden = new float[BT * C];
        if (tokenHead != null) tokenHead.backward(dhidden, scale);
        else seqHead.backward(dhidden, lastT, scale);
        gpt.backwardHidden(dhidden);
    }

    public void zeroGrad() { for (Parameter p : parameters()) p.zeroGrad(); }

    /**
     * Predicted label ids: per position [B*T] for token classification, per row [B] for sequence
     * classification. Runs without loss; dropout should be off ({@link #setTraining}(false)).
     */
    public int[] predict(Batcher.Batch b) {
        int B = b.size(), T = b.length();
        float[] hidden = gpt.forwardHidden(b.ids(), b.starts(), B, T);
        int K = labels.size();
        if (tokenHead != null) {
            int[] out = new int[B * T];
            TokenClassifier.argmax(tokenHead.logits(hidden, B * T), B * T, K, out);
            return out;
        }
        if (seqHead != null) {
            int[] out = new int[B];
            TokenClassifier.argmax(seqHead.logits(hidden, b.lengths(), b.starts(), B, T), B, K, out);
            return out;
        }
        throw new IllegalStateException("predict is for classification tasks");
    }

    /** Predictions from the scores the last {@link #forward} left in the head (no second pass over the model). */
    int[] predictFromLastForward(Batcher.Batch b) {
        int B = b.size(), N = tokenHead != null ? B * b.length() : B, K = labels.size();
        int[] out = new int[N];
        TokenClassifier.argmax(tokenHead != null ? tokenHead.scores() : seqHead.scores(), N, K, out);
        return out;
    }

    // ------------------------------------------------------------------ saving and loading

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
        return c.withExtra("pad_token_id", JSON.getNodeFactory().numberNode(padId));
    }

    /**
     * Saves the fine-tuned model into {@code dir}: a whole Hugging Face model directory (config.json with the
     * labels, model.safetensors with the head) for full, BitFit and top-k; a PEFT adapter directory for the
     * others ({@code baseName}: where the base model lives, for base_model_name_or_path).
     */
    public void save(Path dir, String baseName) {
        if (method == null) {
            saveWhole(dir);
            return;
        }
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
        AdapterIo.save(dir, method, task.peftTaskType, baseName, headParameters(), w);
    }

    /**
     * Saves as a whole Hugging Face model directory (config.json with the task's architecture and labels, weights
     * with the head), whatever the method: after {@link Lora#merge}, a LoRA model saved so needs no PEFT to load.
     */
    public void saveWhole(Path dir) {
        for (int l = 0; l < gpt.config.nLayer(); l++)
            if (!gpt.hooks(l).isEmpty()) throw new IllegalStateException("the model has unmerged " + spec.kind().cliName() + " hooks");
        Checkpoint.save(gpt, taskConfig(), headByName(), dir);
    }

    /**
     * Loads a fine-tuned model for evaluation or further training: {@code model} is either a whole fine-tuned
     * model directory (task and labels from its config.json) or, with {@code adapter}, the base model the
     * adapter directory was trained on. {@code task} may be null to take the saved one.
     */
    public static FinetuneModel load(Path model, Path adapter, Task task) {
        if (adapter == null && AdapterIo.isAdapter(model))
            throw new WaferException(model + " is an adapter directory; give the base model as --model and this as --adapter");
        GptConfig cfg = GptConfig.read(model.resolve("config.json"));
        if (adapter == null) {
            Gpt gpt = new Gpt(cfg);
            Task saved = savedTask(cfg);
            Task t = task == null ? saved : task;
            if (t != saved)
                throw new WaferException(model + ": config.json says " + saved.hfArchitecture + ", not a " + t + " model");
            List<String> labels = t.classifies() ? labelsOf(cfg, model) : List.of();
            FinetuneModel fm = new FinetuneModel(gpt, t, labels, Peft.Spec.of(Peft.Kind.FULL), null, padOf(cfg), 0, "");
            var read = Checkpoint.load(gpt, model, fm.headByName());
            if (t.classifies() && read.size() != fm.headParameters().size())
                throw new WaferException(model + ": no trained " + fm.head().parameters().getFirst().name.split("\\.")[0]
                        + " head in the weights (fine-tune it first)");
            return fm;
        }
        Gpt gpt = Checkpoint.loadFrozen(model); // the shared base stays a mapping of its file
        AdapterIo.Info info = AdapterIo.info(adapter);
        Task saved = Task.parse(info.wafer().path("task").asText(info.taskType()));
        Task t = task == null ? saved : task;
        if (t != saved) throw new WaferException(adapter + ": the adapter was trained for " + saved + ", not " + t);
        String fp = info.wafer().path("base_fingerprint").asText("");
        String have = Fingerprint.of(gpt);
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
        FinetuneModel fm = new FinetuneModel(gpt, t, labels, spec, m, info.wafer().path("pad_token_id").asInt(padOf(cfg)), 0, fp);
        AdapterIo.loadTensors(adapter, m, fm.headParameters());
        m.attach(gpt);
        m.setTraining(false);
        return fm;
    }

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

    static int padOf(GptConfig cfg) {
        JsonNode p = cfg.extra().get("pad_token_id");
        if (p != null && p.canConvertToInt()) return p.intValue();
        JsonNode e = cfg.extra().get("eos_token_id");
        return e != null && e.canConvertToInt() ? e.intValue() : cfg.vocabSize() - 1;
    }

    /** True when dir holds a model directory (not an adapter). */
    public static boolean isModelDir(Path dir) { return Files.isRegularFile(dir.resolve("config.json")); }
}
