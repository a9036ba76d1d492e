package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.OutputDir;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.MuP;
import ai.wafer.plot.Plot;
import ai.wafer.train.AdamW;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.TrainCheckpoint;
import ai.wafer.tokenizer.TokenizerFiles;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code wafer pretrain}: next-token training on llm.c token shards, written out as a Hugging Face checkpoint. */
@Command(name = "pretrain", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Pretrain (or continue training) a GPT model on token shards with AdamW.")
public final class PretrainCommand implements Callable<Integer> {
    static final class Init {
        @Option(names = "--init", paramLabel = "DIR", description = "start from this Hugging Face checkpoint directory")
        Path init;
        @Option(names = "--preset", paramLabel = "NAME", description = "start from a random model of this shape: ${COMPLETION-CANDIDATES}",
                completionCandidates = Presets.class)
        String preset;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1") Init init = new Init();
    @Option(names = "--n-layer", description = "with --preset: override its number of layers") Integer nLayer;
    @Option(names = "--n-embd", description = "with --preset: override its width") Integer nEmbd;
    @Option(names = "--n-head", description = "with --preset: override its number of heads") Integer nHead;
    @Option(names = "--mup", description = "with --preset: µP as Cerebras trains it (init, per-tensor learning rates, BTLM's scales), so a learning rate tuned at --mup-base-width holds at other widths")
    boolean mup;
    @Option(names = "--mup-base-width", defaultValue = "256", description = "the width the hyperparameters were tuned at (default ${DEFAULT-VALUE}, Cerebras-GPT's)")
    int mupBaseWidth;
    @Option(names = "--mup-embeddings-scale", defaultValue = "10", description = "µP's embedding multiplier (default ${DEFAULT-VALUE}, Cerebras-GPT's)")
    double mupEmbeddingsScale;
    @Option(names = "--mup-output-alpha", defaultValue = "1", description = "µP's logit multiplier at the base width (default ${DEFAULT-VALUE})")
    double mupOutputAlpha;
    @Option(names = "--resume", paramLabel = "DIR", description = "continue a run from a checkpoint (checkpoints/step-N) or a run directory's latest")
    Path resume;
    @Option(names = "--data", required = true, arity = "1..*", paramLabel = "SHARD", description = "token shard files (or directories of *train*.bin)")
    List<Path> data;
    @Option(names = "--eval-data", arity = "1..*", paramLabel = "SHARD", description = "held-out shards (or directories of *val*.bin)")
    List<Path> evalData;
    @Option(names = "--steps", description = "optimiser steps (or give --tokens-per-param)") Integer steps;
    @Option(names = "--tokens-per-param", paramLabel = "R", description = "Chinchilla-style budget: steps = R * parameters / tokens per step (Cerebras-GPT: 20)")
    Double tokensPerParam;
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
    @Option(names = "--eval-every", defaultValue = "0", description = "evaluate on --eval-data every N steps (and at the end)") int evalEvery;
    @Option(names = "--eval-batches", defaultValue = "20", description = "batches per evaluation (the same ones each time)") int evalBatches;
    @Option(names = "--save-every", defaultValue = "0", description = "write a resumable checkpoint every N steps") int saveEvery;
    @Option(names = "--keep-checkpoints", defaultValue = "3", paramLabel = "N",
            description = "keep the newest N checkpoints of the run, deleting older ones (0 = keep all; default ${DEFAULT-VALUE})") int keepCheckpoints;
    @Option(names = "--log-every", defaultValue = "0", description = "also print a line every N steps") int logEvery;
    @Option(names = "--no-progress", description = "no progress bar") boolean noProgress;
    @Option(names = "--recompute", description = "activation recomputation (gradient checkpointing per block): keep each block's input, "
            + "rerun the block's forward in backward; most of one more forward pass of time for the activations of one layer instead of all")
    boolean recompute;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "copy this tokenizer (vocab.json, merges.txt) into the output, so it is a complete model directory")
    Path tokenizer;
    @Option(names = "--parallel", paramLabel = "LAYOUT", description = "e.g. dp=2, tp=2, pp=2, dp=2,tp=2: ranks as threads in this process (or MPI processes with --mpi); --batch-size is the global batch")
    String parallel;
    @Option(names = "--zero1", description = "with --parallel and dp > 1: shard the AdamW moments over the data-parallel ranks") boolean zero1;
    @Option(names = "--mpi", description = "with --parallel: this process is one MPI rank (launch with mpirun -np N ./wafer pretrain ...)") boolean mpi;
    @Option(names = "--comm-timeout", defaultValue = "300", paramLabel = "SECONDS",
            description = "with --parallel: a rank that waits this long in one exchange ends the run with an error naming it (default ${DEFAULT-VALUE})")
    double commTimeout;
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "the run directory: final model, metrics.jsonl, TensorBoard events, curves.png, checkpoints/")
    Path out;
    @Option(names = "--overwrite", description = "--out may hold an earlier run or model: empty it first (without this or --resume, an existing --out is refused)")
    boolean overwrite;

    /** Called after every step (tests end the process there, as kill -9 would); never set by the command line. */
    java.util.function.Consumer<Pretrainer.StepResult> afterStep = r -> { };

    @Mixin PrecisionOption precision;

    @Override public Integer call() {
        precision.apply();
        if (gradAccum < 1) throw new WaferException("--grad-accum must be at least 1");
        Gpt model = buildModel();
        if (seqLen > model.config.nPositions())
            throw new WaferException("--seq-len " + seqLen + " exceeds the model's n_positions " + model.config.nPositions());
        long tokensPerStep = (long) gradAccum * batchSize * seqLen;
        int nSteps = Pretrainer.stepBudget(steps, tokensPerParam, model.parameterCount(), tokensPerStep);
        List<Path> shards = new ArrayList<>(), evalShards = new ArrayList<>();
        for (Path p : data) shards.addAll(TokenLoader.shards(p, "train"));
        if (evalData != null) for (Path p : evalData) evalShards.addAll(TokenLoader.shards(p, "val"));
        var opt = new Pretrainer.Options(nSteps, batchSize, seqLen, gradAccum,
                new LrSchedule(LrSchedule.parse(schedule), lr, warmup, nSteps, minLrRatio),
                new AdamW.Hyper(beta1, beta2, eps, weightDecay), gradClip);
        // last of the checks, so that --overwrite empties nothing for a run refused on its options
        if (overwrite && mpi) throw new WaferException("--overwrite with --mpi: every rank would empty " + out + "; remove it before the run");
        List<Path> inputs = new ArrayList<>(data);
        if (evalData != null) inputs.addAll(evalData);
        inputs.add(init.init);
        inputs.add(tokenizer);
        OutputDir.claim(out, true, resume != null, overwrite, inputs);
        if (!mpi) copyTokenizer(); // now, so that a run stopped early has them for a resume into another --out (MPI: rank 0, at the end)
        var control = new Pretrainer.Control().afterStep(afterStep);
        // Ctrl-C: let the current step finish, save a checkpoint, then exit
        try (var signals = control.stopOnSignal()) {
            if (parallel != null) return runParallel(shards, evalShards, opt, control);
            try (TokenLoader loader = new TokenLoader(shards, batchSize, seqLen, !noShuffle, seed);
                 TokenLoader eval = evalShards.isEmpty() ? null : new TokenLoader(evalShards, batchSize, seqLen, false, seed)) {
                var trainer = new Pretrainer(model, loader, opt);
                if (resume != null) trainer.resume(TrainCheckpoint.resolve(resume));
                System.err.printf("wafer: %,d parameters; %,d tokens of data; steps %d..%d of %,d tokens each (%,d tokens = %.1f per parameter)%s%n",
                        model.parameterCount(), loader.totalTokens(), trainer.step() + 1, nSteps, tokensPerStep,
                        nSteps * tokensPerStep, (double) nSteps * tokensPerStep / model.parameterCount(),
                        recompute ? "; activations recomputed in backward" : "");
                var rep = new Pretrainer.Reporting(out, evalEvery, evalBatches, saveEvery, logEvery, !noProgress, keepCheckpoints);
                var outcome = Pretrainer.run(trainer, eval, rep, System.out, control);
                curves(outcome.steps());
                double evalLoss = outcome.evalLoss();
                if (trainer.step() == nSteps) {
                    saveModel(model);
                    System.err.printf("wafer: saved %s (final train loss and curves in %s)%s%n", out, out.resolve("metrics.jsonl"), heldOut(evalLoss));
                }
            }
        }
        return 0;
    }

    /** curves.png from metrics.jsonl, unless this run took no step (a finished run resumed: nothing new). */
    private void curves(List<?> steps) {
        if (!steps.isEmpty()) Plot.write(out, out.resolve("curves.png"));
    }

    private void saveModel(Gpt model) {
        Checkpoint.save(model, out);
        copyTokenizer();
    }

    /** The tokenizer files beside the run's model: from --init, --tokenizer, or the run a --resume continues. */
    private void copyTokenizer() {
        if (init.init != null) TokenizerFiles.copy(init.init, out);
        if (tokenizer != null) TokenizerFiles.copy(tokenizer, out);
        if (resume != null) TokenizerFiles.copy(TrainCheckpoint.resolve(resume).getParent().getParent(), out); // run/checkpoints/step-N
    }

    private static String heldOut(double evalLoss) {
        return Double.isNaN(evalLoss) ? "" : String.format("; held-out loss %.4f, perplexity %.2f", evalLoss, Math.exp(evalLoss));
    }

    /**
     * A parallel run (ai.wafer.parallel): every rank builds the same model, takes its share of each global
     * batch, and rank 0 writes the run's files and checkpoints (in the one-rank form, so any layout resumes
     * them); the final one becomes the model in --out.
     */
    private Integer runParallel(List<Path> shards, List<Path> evalShards, Pretrainer.Options opt, Pretrainer.Control control) {
        var layout = ai.wafer.parallel.Layout.parse(parallel);
        // without a bar, a line every 5% of the run (as parallel runs always logged)
        int every = logEvery > 0 ? logEvery : noProgress || !ai.wafer.track.Terminal.interactive() ? Math.max(1, opt.steps() / 20) : 0;
        var rep = new Pretrainer.Reporting(out, evalEvery, evalBatches, saveEvery, every, !noProgress, keepCheckpoints);
        var setup = new ai.wafer.parallel.ParallelPretrain.Setup(this::buildModel, shards, evalShards, !noShuffle, seed, opt, zero1,
                resume, rep, System.out, control, ai.wafer.parallel.ParallelPretrain.timeout(commTimeout));
        var r = ai.wafer.parallel.ParallelPretrain.run(layout, ai.wafer.parallel.ParallelPretrain.Engine.of(mpi), setup);
        if (r.writes()) curves(r.steps());
        if (r.stopped() || !r.writes()) return 0; // under MPI only rank 0 writes the model, as it wrote the checkpoints
        if (r.lastCheckpoint() != null) {
            saveModel(Checkpoint.load(r.lastCheckpoint()));
            System.err.println("wafer: saved " + out + " (" + r.bytesPerStep() + " bytes sent per rank per step)" + heldOut(r.evalLoss()));
        } else {
            System.err.println("wafer: " + layout + " trained " + r.steps().size() + " steps; no checkpoint was written");
        }
        return 0;
    }

    private Gpt buildModel() {
        // the shape of a resumed run comes from its checkpoint, which under MPI rank 0 alone reads
        Gpt m = mpi && parallel != null && resume != null && init.init == null && init.preset == null && nLayer == null && nEmbd == null && nHead == null
                ? new Gpt(ai.wafer.parallel.ParallelPretrain.resumedShape(resume, ai.wafer.parallel.ParallelPretrain.timeout(commTimeout)))
                : Pretrainer.startingModel(init.init, init.preset, nLayer, nEmbd, nHead,
                        mup ? width -> MuP.of(mupBaseWidth, width, mupEmbeddingsScale, mupOutputAlpha) : null, seed, resume);
        m.setRecompute(recompute);
        return m;
    }

    /** Preset names for the help text. */
    static final class Presets extends ArrayList<String> {
        Presets() { super(GptConfig.PRESETS.keySet().stream().sorted().toList()); }
    }
}
