package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.finetune.Task;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.peft.AdapterIo;
import ai.wafer.peft.Lora;
import ai.wafer.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/** A checkpoint ready to generate with: the inference weights, its tokenizer (null if it has none) and its name. */
public record LoadedModel(String name, InferenceModel model, Tokenizer tokenizer) {

    /**
     * Loads dir (and its tokenizer, from {@code tokenizerDir} or else dir itself when it has one). With
     * {@code adapter}, dir is the base model and the adapter must be a causal-LM LoRA adapter: it is merged into
     * the weights, since the inference path runs plain GPT-2 blocks without fine-tuning hooks.
     */
    public static LoadedModel load(Path dir, Path adapter, Path tokenizerDir, WeightType type) {
        if (!Files.isDirectory(dir)) throw new WaferException("--model " + dir + ": no such directory");
        if (adapter != null && !AdapterIo.isAdapter(adapter))
            throw new WaferException("--adapter " + adapter + ": not an adapter directory (no " + AdapterIo.CONFIG + ")");
        Gpt gpt = adapter == null ? Checkpoint.load(dir) : merged(dir, adapter);
        Path td = tokenizerDir != null ? tokenizerDir : dir;
        Tokenizer tok = null;
        if (tokenizerDir != null || Files.isRegularFile(dir.resolve("vocab.json")) || Files.isRegularFile(dir.resolve("tokenizer.json")))
            tok = Tokenizer.load(td);
        if (tok != null && tok.vocabSize() > gpt.config.vocabSize())
            throw new WaferException("the tokenizer in " + td + " has " + tok.vocabSize() + " tokens but the model's vocabulary only "
                    + gpt.config.vocabSize());
        Path named = adapter != null ? adapter : dir;
        return new LoadedModel(named.getFileName() == null ? named.toString() : named.getFileName().toString(),
                new InferenceModel(gpt, type), tok);
    }

    /** The base model with a causal-LM LoRA adapter merged in (FinetuneModel checks task and base fingerprint). */
    private static Gpt merged(Path base, Path adapter) {
        FinetuneModel fm = FinetuneModel.load(base, adapter, Task.CAUSAL_LM);
        if (!(fm.method instanceof Lora l))
            throw new WaferException("--adapter " + adapter + ": a " + fm.spec.kind().cliName() + " adapter cannot be applied for generation;"
                    + " only LoRA adapters are merged into the weights (fine-tune with --method lora or full)");
        l.merge(fm.gpt);
        return fm.gpt;
    }

    public Tokenizer requireTokenizer() {
        if (tokenizer == null) throw new WaferException(name + ": the model directory has no tokenizer (vocab.json + merges.txt); pass --tokenizer DIR");
        return tokenizer;
    }
}
