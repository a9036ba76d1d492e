package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/** A checkpoint ready to generate with: the inference weights, its tokenizer (null if it has none) and its name. */
public record LoadedModel(String name, InferenceModel model, Tokenizer tokenizer) {

    /**
     * Loads dir (and its tokenizer, from {@code tokenizerDir} or else dir itself when it has one).
     * Adapters need the fine-tuning package, which does not exist yet: {@code adapter} must be null.
     */
    public static LoadedModel load(Path dir, Path adapter, Path tokenizerDir, WeightType type) {
        if (adapter != null)
            throw new WaferException("--adapter " + adapter + ": adapters are not supported yet (no fine-tuning adapters exist in this build); "
                    + "merge the adapter into the model and pass the merged directory as --model");
        if (!Files.isDirectory(dir)) throw new WaferException("--model " + dir + ": no such directory");
        Gpt gpt = Checkpoint.load(dir);
        Path td = tokenizerDir != null ? tokenizerDir : dir;
        Tokenizer tok = null;
        if (tokenizerDir != null || Files.isRegularFile(dir.resolve("vocab.json")) || Files.isRegularFile(dir.resolve("tokenizer.json")))
            tok = Tokenizer.load(td);
        if (tok != null && tok.vocabSize() > gpt.config.vocabSize())
            throw new WaferException("the tokenizer in " + td + " has " + tok.vocabSize() + " tokens but the model's vocabulary only "
                    + gpt.config.vocabSize());
        return new LoadedModel(dir.getFileName() == null ? dir.toString() : dir.getFileName().toString(),
                new InferenceModel(gpt, type), tok);
    }

    public Tokenizer requireTokenizer() {
        if (tokenizer == null) throw new WaferException(name + ": the model directory has no tokenizer (vocab.json + merges.txt); pass --tokenizer DIR");
        return tokenizer;
    }
}
