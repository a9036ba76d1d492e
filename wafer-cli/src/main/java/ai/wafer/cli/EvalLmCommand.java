package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code wafer eval-lm}: mean next-token loss and perplexity of a model on token shards. */
@Command(name = "eval-lm", mixinStandardHelpOptions = true,
        description = "Evaluate a language model's loss and perplexity on token shards; prints one JSON line.")
public final class EvalLmCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR") Path model;
    @Option(names = "--data", required = true, arity = "1..*", paramLabel = "SHARD",
            description = "token shard files (or directories: their *val*.bin files)") List<Path> data;
    @Option(names = "--batch-size", defaultValue = "4") int batchSize;
    @Option(names = "--seq-len", defaultValue = "256") int seqLen;
    @Option(names = "--batches", defaultValue = "0", description = "how many batches (default: one pass over the data)") int batches;
    @Option(names = "--no-shuffle", description = "read windows in order") boolean noShuffle;
    @Option(names = "--seed", defaultValue = "1337") long seed;
    @Option(names = "--dtype", description = "weights as inference keeps them: fp32, bf16 or int8 (default: fp32, or int8 as stored for a model file stored int8)") String dtype;
    @Option(names = "--group-size", defaultValue = "0", paramLabel = "G", description = "with --dtype int8: a scale per output channel and group of G inputs (32, 64, 128; 0 = one per channel; default ${DEFAULT-VALUE}); an int8 model file is used as stored") int groupSize;

    @Override public Integer call() {
        Gpt m = Checkpoint.loadFrozen(model); // matrices used in place from the file (an int8 file as stored)
        ai.wafer.generate.WeightType.parse(dtype, groupSize, model).apply(m);
        if (seqLen > m.config.nPositions())
            throw new WaferException("--seq-len " + seqLen + " exceeds the model's n_positions " + m.config.nPositions());
        List<Path> shards = new ArrayList<>();
        for (Path p : data) shards.addAll(TokenLoader.shards(p, "val"));
        try (TokenLoader loader = new TokenLoader(shards, batchSize, seqLen, !noShuffle, seed)) {
            long n = batches > 0 ? batches : Math.max(1, loader.windowsPerEpoch() / batchSize);
            ai.wafer.train.LmEval.Result r;
            try (var progress = new ai.wafer.track.Progress("eval-lm", n, "batches")) {
                r = ai.wafer.train.LmEval.run(m, loader, n, progress);
            }
            System.out.printf("{\"loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %d}%n", r.loss(), r.perplexity(), r.tokens());
        }
        return 0;
    }
}
