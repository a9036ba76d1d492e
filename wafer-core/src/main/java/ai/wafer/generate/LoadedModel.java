package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Task;
import ai.wafer.peft.AdapterIo;
import ai.wafer.peft.FineTuned;
import ai.wafer.peft.PrefixTuning;
import ai.wafer.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A checkpoint ready to generate with: the inference weights, its tokenizer (null if it has none), its name and its
 * chat template (the tokenizer directory's, else the built-in one).
 */
public record LoadedModel(String name, InferenceModel model, Tokenizer tokenizer, ChatTemplate chat) {
    public LoadedModel(String name, InferenceModel model, Tokenizer tokenizer) { this(name, model, tokenizer, ChatTemplate.BUILT_IN); }

    /** This model with {@code file}'s Jinja chat template instead (null: unchanged). */
    public LoadedModel withChatTemplate(Path file, Path tokenizerDir) {
        return file == null ? this : new LoadedModel(name, model, tokenizer, ChatTemplate.read(file, tokenizerDir));
    }

    /**
     * Loads dir (and its tokenizer, from {@code tokenizerDir} or else dir itself when it has one). With
     * {@code adapter}, dir is the base model and the adapter a causal-LM one: LoRA and (IA)3 are merged into the
     * weights (the inference path runs plain GPT-2 blocks), a prefix becomes the first positions of every KV cache;
     * bottleneck adapters add layers and cannot be applied.
     */
    public static LoadedModel load(Path dir, Path adapter, Path tokenizerDir, WeightType type) { return load(dir, adapter, tokenizerDir, type, false); }

    /** The base model in dir (no adapter), ready to serve many adapters at once ({@link InferenceModel#mixing}). */
    public static LoadedModel mixing(Path dir, Path tokenizerDir, WeightType type) { return load(dir, null, tokenizerDir, type, true); }

    private static LoadedModel load(Path dir, Path adapter, Path tokenizerDir, WeightType type, boolean mixing) {
        if (!Files.isDirectory(dir)) throw new WaferException("--model " + dir + ": no such directory");
        if (adapter != null && !AdapterIo.isAdapter(adapter))
            throw new WaferException("--adapter " + adapter + ": not an adapter directory (no " + AdapterIo.CONFIG + ")");
        InferenceModel im;
        GptConfig cfg;
        Task saved = FineTuned.savedTask(dir, null);
        if (adapter == null && saved != null && saved.classifies())
            throw new WaferException("--model " + dir + " is a " + saved.cliName + " model (" + saved.hfArchitecture + " in its config.json): "
                    + "it labels text and cannot generate; give a language model, or use evaluate or serve with this one");
        if (adapter == null) {
            Gpt gpt = Checkpoint.loadFrozen(dir); // matrices used in place from the file: a model larger than the heap runs
            cfg = gpt.config;
            im = mixing ? InferenceModel.mixing(gpt, type) : new InferenceModel(gpt, type);
        } else {
            FineTuned ft = FineTuned.load(dir, adapter, Task.CAUSAL_LM); // checks task and base fingerprint
            if (!ft.runsAsPlainGpt())
                throw new WaferException("--adapter " + adapter + ": a " + ft.spec.kind().cliName()
                        + " adapter adds layers that generation does not run; LoRA, (IA)3 and prefix adapters can be applied");
            cfg = ft.gpt.config;
            PrefixTuning prefix = ft.mergeForInference();
            im = new InferenceModel(ft.gpt, type);
            if (prefix != null) im.setPrefix(prefix.prompt.array(), prefix.length());
        }
        Path td = tokenizerDir != null ? tokenizerDir : dir;
        Tokenizer tok = null;
        if (tokenizerDir != null || Files.isRegularFile(dir.resolve("vocab.json")) || Files.isRegularFile(dir.resolve("tokenizer.json")))
            tok = Tokenizer.load(td);
        if (tok != null && tok.vocabSize() > cfg.vocabSize())
            throw new WaferException("the tokenizer in " + td + " has " + tok.vocabSize() + " tokens but the model's vocabulary only "
                    + cfg.vocabSize());
        Path named = adapter != null ? adapter : dir;
        return new LoadedModel(named.getFileName() == null ? named.toString() : named.getFileName().toString(), im, tok,
                tok == null ? ChatTemplate.BUILT_IN : ChatTemplate.of(td));
    }

    public Tokenizer requireTokenizer() {
        if (tokenizer == null) throw new WaferException(name + ": the model directory has no tokenizer (vocab.json + merges.txt); pass --tokenizer DIR");
        return tokenizer;
    }
}
