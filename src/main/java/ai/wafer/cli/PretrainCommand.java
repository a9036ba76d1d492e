package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.train.AdamW;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.Pretrainer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code wafer pretrain}: next-token training on llm.c token shards, written out as a Hugging Face checkpoint. */
@Command(name = "pretrain", mixinStandardHelpOptions = true,
        description = "Pretrain (or continue training) a GPT model on token shards with AdamW.")
public final class PretrainCommand implements Callable<Integer> {
    static final class Init {
        @Option(names = "--init", paramLabel = "DIR", description = "start from this Hugging Face checkpoint directory")
        Path init;
        @Option(names = "--preset", paramLabel = "NAME", description = "start from a random model of this shape: ${COMPLETION-CANDIDATES}",
                completionCandidates = Presets.class)
        String preset;
    }

    @ArgGroup(exclusive = true, multiplicity = "1") Init init;
    @Option(names = "--data", required = true, arity = "1..*", paramLabel = "SHARD", description = "token shard files (or directories of *train*.bin)")
    List<Path> data;
    @Option(names = "--steps", required = true) int steps;
    @Option(names = "--batch-size", defaultValue = "4") int batchSize;
    @Option(names = "--seq-len", defaultValue = "256") int seqLen;
    @Option(names = "--grad-accum", defaultValue = "1") int gradAccum;
    @Option(names = "--lr", defaultValue = "6e-4") float lr;
    @Option(names = "--schedule", defaultValue = "constant", description = "constant, linear or cosine (default ${DEFAULT-VALUE})") String schedule;
    @Option(names = "--warmup-steps", defaultValue = "0") int warmup;
    @Option(names = "--min-lr-ratio", defaultValue = "0.1", description = "decay ends at this fraction of --lr (default ${DEFAULT-VALUE})") float minLrRatio;
    @Option(names = "--weight-decay", defaultValue = "0.1") float weightDecay;
    @Option(names = "--beta1", defaultValue = "0.9") float beta1;
    @Option(names = "--beta2", defaultValue = "0.95") float beta2;
    @Option(names = "--eps", defaultValue = "1e-8") float eps;
    @Option(names = "--grad-clip", defaultValue = "1.0", description = "global gradient-norm clip, 0 = off (default ${DEFAULT-VALUE})") float gradClip;
    @Option(names = "--no-shuffle", description = "batch k row b starts at ((k*B+b)*T) mod (N-T-1): reproducible elsewhere") boolean noShuffle;
    @Option(names = "--seed", defaultValue = "1337") long seed;
    @Option(names = "--log-every", defaultValue = "1", description = "print a line every N steps") int logEvery;
    @Option(names = "--out", required = true, paramLabel = "DIR") Path out;

    @Override public Integer call() {
        if (steps < 1) throw new WaferException("--steps must be at least 1");
        if (gradAccum < 1) throw new WaferException("--grad-accum must be at least 1");
        Gpt model = init.init != null ? Checkpoint.load(init.init) : Gpt.init(GptConfig.preset(init.preset), seed);
        if (seqLen > model.config.nPositions())
            throw new WaferException("--seq-len " + seqLen + " exceeds the model's n_positions " + model.config.nPositions());
        List<Path> shards = new ArrayList<>();
        for (Path p : data) shards.addAll(TokenLoader.shards(p, "train"));
        try (TokenLoader loader = new TokenLoader(shards, batchSize, seqLen, !noShuffle, seed)) {
            System.err.printf("wafer: %,d parameters, %,d tokens of data, %d steps of %d x %d x %d tokens%n",
                    model.parameterCount(), loader.totalTokens(), steps, gradAccum, batchSize, seqLen);
            LrSchedule sched = new LrSchedule(LrSchedule.parse(schedule), lr, warmup, steps, minLrRatio);
            var trainer = new Pretrainer(model, loader, new Pretrainer.Options(steps, batchSize, seqLen, gradAccum,
                    sched, new AdamW.Hyper(beta1, beta2, eps, weightDecay), gradClip));
            trainer.run(System.out, Math.max(1, logEvery), null);
        }
        Checkpoint.save(model, out);
        if (init.init != null) TokenizerFiles.copy(init.init, out);
        System.err.println("wafer: saved " + out);
        return 0;
    }

    /** Preset names for the help text. */
    static final class Presets extends ArrayList<String> {
        Presets() { super(GptConfig.PRESETS.keySet().stream().sorted().toList()); }
    }
}
