package ai.wafer.tokenizer;

import ai.wafer.io.AtomicFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** A saved model keeps its tokenizer beside it, so the directory stays loadable by Hugging Face tools. */
public final class TokenizerFiles {
    private TokenizerFiles() {}

    public static final List<String> NAMES = List.of("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json");

    public static void copy(Path from, Path to) {
        if (from.toAbsolutePath().normalize().equals(to.toAbsolutePath().normalize())) return;
        for (String n : NAMES) {
            Path f = from.resolve(n);
            if (!Files.isRegularFile(f)) continue;
            AtomicFiles.copy(f, to.resolve(n));
        }
    }
}
