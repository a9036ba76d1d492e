package ai.wafer.cli;

import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.SamplingParams;
import ai.wafer.generate.WeightType;
import ai.wafer.tokenizer.Tokenizer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The model and sampling options shared by {@code generate}, {@code chat} and {@code serve}. */
final class GenerationOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model directory (config.json + safetensors or pytorch_model.bin, sharded or not)") Path model;
    @Option(names = "--adapter", paramLabel = "DIR", description = "a causal-LM adapter for --model (the base model): LoRA and (IA)3 are merged into its weights, a prefix goes in front of every sequence") Path adapter;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer directory (default: the model's)") Path tokenizer;
    @Option(names = "--dtype", description = "weights in memory: fp32, bf16 (half the memory, faster decoding) or int8 (a quarter; weight-only, a scale per output channel, see --group-size) (default: fp32, or int8 as stored for a model file stored int8)") String dtype;
    @Option(names = "--group-size", defaultValue = "0", paramLabel = "G", description = "with --dtype int8: a scale per output channel and group of G inputs (32, 64, 128; 0 = one per channel; default ${DEFAULT-VALUE}); an int8 model file is used as stored") int groupSize;

    @Option(names = "--max-tokens", defaultValue = "128", description = "most new tokens (default: ${DEFAULT-VALUE})") int maxTokens;
    @Option(names = "--temperature", defaultValue = "0.8", description = "0 = greedy (default: ${DEFAULT-VALUE})") float temperature;
    @Option(names = "--greedy", description = "always take the most likely token (temperature 0)") boolean greedy;
    @Option(names = "--top-k", defaultValue = "40", description = "0 = off (default: ${DEFAULT-VALUE})") int topK;
    @Option(names = "--top-p", defaultValue = "0.95", description = "1 = off (default: ${DEFAULT-VALUE})") float topP;
    @Option(names = "--min-p", defaultValue = "0", description = "0 = off (default: ${DEFAULT-VALUE})") float minP;
    @Option(names = "--repetition-penalty", defaultValue = "1", description = "CTRL's penalty, 1 = off (default: ${DEFAULT-VALUE})") float repetitionPenalty;
    @Option(names = "--stop", paramLabel = "TEXT", description = "stop before this text (repeatable)") List<String> stop = new ArrayList<>();
    @Option(names = "--stop-token", paramLabel = "ID", description = "stop at this token id (repeatable)") List<Integer> stopTokens = new ArrayList<>();
    @Option(names = "--ignore-eos", description = "do not stop at <|endoftext|>") boolean ignoreEos;
    @Option(names = "--seed", description = "seed for reproducible sampling") Long seed;
    @Option(names = "--beams", defaultValue = "1", description = "beam search width (1 = off; ignores sampling options)") int beams;

    LoadedModel load() {
        return LoadedModel.load(model, adapter, tokenizer, WeightType.parse(dtype, groupSize, model));
    }

    /** The sampling parameters, with the tokenizer's end-of-text added to the stop tokens unless --ignore-eos. */
    SamplingParams params(Tokenizer tok, List<String> extraStops) {
        List<Integer> ids = new ArrayList<>(stopTokens);
        if (!ignoreEos && tok != null && tok.eot() >= 0) ids.add(tok.eot());
        List<String> stops = new ArrayList<>(stop);
        stops.addAll(extraStops);
        return new SamplingParams(maxTokens, greedy ? 0f : temperature, topK, topP, minP, repetitionPenalty, stops, ids, seed, beams);
    }
}
