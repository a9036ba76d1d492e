package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.OutputDir;
import ai.wafer.model.GptConfig;
import ai.wafer.parallel.Plan;
import ai.wafer.tokenizer.TokenizerFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/** {@code wafer init}: a randomly initialised model directory of any size, written without holding it in memory. */
@Command(name = "init", mixinStandardHelpOptions = true,
        description = "Write a randomly initialised model (Cerebras-GPT's initialisation) in a preset's or config's exact shapes,"
                + " as Hugging Face safetensors, streamed to disk: Cerebras-GPT 6.7B or 13B can be written on a small machine"
                + " to try generation and fine-tuning at that size. Matrices are windows of shared random buffers"
                + " (random enough for speed and memory, not for quality).")
public final class InitCommand implements Callable<Integer> {
    @Option(names = "--preset", paramLabel = "NAME", description = "model preset (e.g. cerebras-gpt-13b)") String preset;
    @Option(names = "--config", paramLabel = "DIR|config.json", description = "model config instead of a preset") Path config;
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "where to write; empty unless --overwrite") Path out;
    @Option(names = "--dtype", defaultValue = "bf16", description = "weights as fp32, bf16 or fp16 (default: ${DEFAULT-VALUE})")
    ConvertCommand.Dtype dtype;
    @Option(names = "--seed", defaultValue = "1234", description = "random seed (default: ${DEFAULT-VALUE})") long seed;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "copy this tokenizer (vocab.json, merges.txt) beside the weights") Path tokenizer;
    @Option(names = "--max-shard-size", defaultValue = "5GB", paramLabel = "SIZE",
            description = "shard above this size, with an index (default: ${DEFAULT-VALUE})") String maxShardSize;
    @Option(names = "--overwrite", description = "replace what --out holds") boolean overwrite;

    @Override public Integer call() {
        if ((preset == null) == (config == null)) throw new WaferException("give exactly one of --preset NAME or --config PATH");
        GptConfig c = preset != null ? GptConfig.preset(preset)
                : GptConfig.read(config.toFile().isDirectory() ? config.resolve("config.json") : config);
        if (dtype == ConvertCommand.Dtype.int8)
            throw new WaferException("--dtype int8: init writes fp32, bf16 or fp16; quantize what it writes with wafer convert --dtype int8");
        long max = Plan.parseBytes(maxShardSize);
        if (max <= 0) throw new WaferException("--max-shard-size " + maxShardSize + " must be positive");
        OutputDir.claim(out, false, false, overwrite, Arrays.asList(config, tokenizer));
        long t = System.nanoTime();
        Checkpoint.writeRandom(c, seed, out, dtype.type, max);
        if (tokenizer != null) TokenizerFiles.copy(tokenizer, out);
        System.err.printf("wafer init: wrote %s (%,d parameters, %s) in %.0f s%n", out, c.parameterCount(), dtype, (System.nanoTime() - t) / 1e9);
        return 0;
    }
}
