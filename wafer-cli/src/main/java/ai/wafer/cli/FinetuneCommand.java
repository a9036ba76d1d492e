package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.finetune.Evaluator;
import ai.wafer.finetune.FinetuneJob;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.finetune.Finetuner;
import ai.wafer.io.OutputDir;
import ai.wafer.model.SequenceClassifier;
import ai.wafer.model.Task;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Peft;
import ai.wafer.plot.Plot;
import ai.wafer.train.AdamW;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.TrainCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.IntFunction;
import ai.wafer.parallel.DataParallelFinetune;
import ai.wafer.parallel.ParallelPretrain;

/** {@code wafer finetune}: a task head and a fine-tuning method on a pretrained model. */
@Command(name = "finetune", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fine-tune a GPT model for token classification (CoNLL), sequence classification (JSONL/CSV) or "
                + "causal LM on instruction data (JSONL; loss on responses only).",
                "Batches are padded on the right (default) or the left (--padding-side; the pads are masked, so both give the same",
                "results); longer examples are truncated to --max-length with a warning."})
public final class FinetuneCommand implements Callable<Integer> {
    @Spec CommandSpec cmd;
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "pretrained model directory (config.json + safetensors or pytorch_model.bin, sharded or not), or a model "
            + "fine-tuned for this --task, trained further with its head and labels (--method full; continual learning)") Path model;
    @Option(names = "--task", required = true, description = "token-classification, sequence-classification or causal-lm") String task;
    @Option(names = "--train", required = true, paramLabel = "FILE") Path trainFile;
    @Option(names = "--dev", paramLabel = "FILE", description = "scored during training; the best model is kept") Path devFile;
    @Option(names = "--text-field", defaultValue = "text", description = "sequence classification: the JSONL field or CSV column of the text (default ${DEFAULT-VALUE})") String textField;
    @Option(names = "--text-pair-field", paramLabel = "FIELD", description = "sequence classification: a second text (sentence pairs), joined to the first by <|endoftext|> (default: none)") String pairField;
    @Option(names = "--label-field", defaultValue = "label", description = "sequence classification: the field or column of the label; a list of labels with multi_label_classification (default ${DEFAULT-VALUE})") String labelField;
    @Option(names = "--problem-type", defaultValue = "single_label_classification", description = "sequence classification: single_label_classification (softmax, cross-entropy), multi_label_classification (a sigmoid and binary cross-entropy per label, threshold 0.5) or regression (one number, mean squared error) (default ${DEFAULT-VALUE})") String problemType;
    @Option(names = "--method", defaultValue = "lora", description = "full, lora, prefix, ia3, adapter, bitfit, top-k (default ${DEFAULT-VALUE})") String method;
    @Option(names = "--lora-r", defaultValue = "8") int loraR;
    @Option(names = "--lora-alpha", defaultValue = "16") float loraAlpha;
    @Option(names = "--lora-dropout", defaultValue = "0.05") float loraDropout;
    @Option(names = "--lora-targets", defaultValue = "c_attn", split = ",", description = "among c_attn, attn.c_proj, c_fc, mlp.c_proj (default ${DEFAULT-VALUE})")
    List<String> loraTargets;
    @Option(names = "--merge", description = "LoRA: also write merged/, a whole model with the update merged into the weights") boolean merge;
    @Option(names = "--prefix-tokens", defaultValue = "16", description = "prefix tuning: virtual tokens per layer") int prefixTokens;
    @Option(names = "--adapter-size", defaultValue = "64", description = "bottleneck adapters: hidden size") int adapterSize;
    @Option(names = "--top-k", defaultValue = "2", description = "top-k: how many of the last blocks to train") int topK;
    @Option(names = "--epochs", defaultValue = "3") int epochs;
    @Option(names = "--max-steps", defaultValue = "0", paramLabel = "N", description = "stop after N optimizer steps, across as many epochs as "
            + "that takes (it replaces --epochs, and the schedule runs over N, as Hugging Face's max_steps; 0 = off, default ${DEFAULT-VALUE})") int maxSteps;
    @Option(names = "--batch-size", defaultValue = "16") int batchSize;
    @Option(names = "--grad-accum", defaultValue = "1") int gradAccum;
    @Option(names = "--lr", description = "peak learning rate (default: 5e-5 full, 1e-3 bitfit/top-k, 2e-3 lora/adapter/prefix, 5e-3 ia3)") Float lr;
    @Option(names = "--schedule", defaultValue = "linear", description = "constant, linear or cosine (default ${DEFAULT-VALUE})") String schedule;
    @Option(names = "--warmup-ratio", defaultValue = "0.06") float warmupRatio;
    @Option(names = "--weight-decay", defaultValue = "0.01") float weightDecay;
    @Option(names = "--grad-clip", defaultValue = "1.0") float gradClip;
    @Option(names = "--max-length", description = "tokens per example (default: the model's n_positions, at most 512)") Integer maxLength;
    @Option(names = "--max-train", defaultValue = "0", description = "use a random subsample of this many training examples (0 = all)") int maxTrain;
    @Option(names = "--eval-every", defaultValue = "0", description = "evaluate on --dev every N steps (0 = after each epoch)") int evalEvery;
    @Option(names = "--early-stopping", defaultValue = "0", paramLabel = "PATIENCE", description = "stop after this many evaluations without improvement (0 = off)") int patience;
    @Option(names = "--padding-side", defaultValue = "right", description = "left or right (default ${DEFAULT-VALUE}); dev evaluation pads the same way") String paddingSide;
    @Option(names = "--seed", defaultValue = "1337") long seed;
    @Option(names = "--base-dtype", description = "the frozen base's matrices in memory, read in that form by the products: fp32, bf16 or int8 (a scale per output channel, see --group-size; not with --method full; default: fp32, or int8 as stored for a model file stored int8, which full fine-tuning dequantizes)") String baseDtype;
    @Option(names = "--group-size", defaultValue = "0", paramLabel = "G", description = "with --base-dtype int8: a scale per output channel and group of G inputs (32, 64, 128; 0 = one per channel; default ${DEFAULT-VALUE}); an int8 model file is used as stored") int groupSize;
    @Option(names = "--recompute", description = "activation recomputation (gradient checkpointing per block): keep each block's input, "
            + "rerun the block's forward in backward; most of one more forward pass of time for the activations of one layer instead of all")
    boolean recompute;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer directory (default: the model's)") Path tokenizerDir;
    @Option(names = "--no-progress") boolean noProgress;
    @Option(names = "--parallel", paramLabel = "dp=N", description = "data parallel: N ranks (threads here, or MPI processes with --mpi) each take 1/N of every global batch of --batch-size rows; only trainable gradients are exchanged") String parallel;
    @Option(names = "--mpi", description = "with --parallel: this process is one MPI rank (mpirun -np N ./wafer finetune ... --parallel dp=N --mpi)") boolean mpi;
    @Option(names = "--comm-timeout", defaultValue = "300", paramLabel = "SECONDS",
            description = "with --parallel: a rank that waits this long in one exchange ends the run with an error naming it (default ${DEFAULT-VALUE})")
    double commTimeout;
    @Option(names = "--save-every", defaultValue = "0", paramLabel = "N",
            description = "also write a resumable checkpoint (checkpoints/step-N) every N steps; the last step always writes one (default ${DEFAULT-VALUE})") int saveEvery;
    @Option(names = "--keep-checkpoints", defaultValue = "3", paramLabel = "N",
            description = "keep the newest N checkpoints of the run, deleting older ones (0 = keep all; default ${DEFAULT-VALUE})") int keepCheckpoints;
    @Option(names = "--resume", paramLabel = "DIR|latest", description = "continue a run bit for bit from a checkpoint (checkpoints/step-N), "
            + "a run directory's latest one, or latest: --out's; its method, base, data and batch options must be this run's") String resume;
    @Option(names = "--replay", paramLabel = "FILE", description = "continual learning: an earlier task's training data (same --task, "
            + "labels all the model's) mixed into every batch, as --replay-ratio says") Path replayFile;
    @Option(names = "--replay-ratio", defaultValue = "0.25", paramLabel = "R", description = "with --replay: each batch holds "
            + "round(R x --batch-size) of its examples, R in (0, 1) (default ${DEFAULT-VALUE})") float replayRatio;
    @Option(names = "--ewc", paramLabel = "LAMBDA", description = "continual learning (--method full): elastic weight consolidation, "
            + "LAMBDA/2 sum F (w - w*)^2 added to the loss, w* the --model's weights and F its fisher.safetensors (see --fisher-examples)") Float ewc;
    @Option(names = "--fisher-examples", defaultValue = "0", paramLabel = "N", description = "--method full: after training, write "
            + "OUT/fisher.safetensors, the diagonal empirical Fisher of the saved model over N training examples, for a later --ewc run "
            + "from it (0 = none; default ${DEFAULT-VALUE})") int fisherExamples;
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "best model (or adapter), metrics.jsonl, TensorBoard events, curves.png, checkpoints/") Path out;
    @Option(names = "--overwrite", description = "--out may hold an earlier run or model: empty it first (without this or --resume, an existing --out is refused)") boolean overwrite;

    @Mixin PrecisionOption precision;

    @Override public Integer call() {
        precision.apply();
        Task t = Task.parse(task);
        Batcher.Side side = Batcher.Side.parse(paddingSide);
        Peft.Kind kind = Peft.Kind.parse(method);
        Peft.Spec spec = new Peft.Spec(kind, new Lora.Config(loraR, loraAlpha, loraDropout, loraTargets), topK, prefixTokens, adapterSize);
        PrintWriter err = cmd.commandLine().getErr();
        var ck = new Finetuner.Checkpoints(maxSteps, saveEvery, keepCheckpoints,
                resume == null ? null : TrainCheckpoint.resolve(resume.equals("latest") ? out : Path.of(resume)));
        // a checkpoint is read by every rank, which an MPI job on several machines cannot do (pretraining's rank 0 sends it)
        if (resume != null && mpi) throw new WaferException("--resume with --mpi is not supported for finetune; resume with --parallel dp=N as threads");
        FinetuneJob job = FinetuneJob.prepare(new FinetuneJob.Request(model, tokenizerDir, t, trainFile, devFile, spec, maxLength, maxTrain, seed,
                kind == Peft.Kind.FULL && baseDtype == null && groupSize == 0 ? ai.wafer.generate.WeightType.F32 : ai.wafer.generate.WeightType.parse(baseDtype, groupSize, model),
                new TextClassificationReader.Columns(textField, pairField, labelField), SequenceClassifier.Problem.parse(problemType)), err);
        job.model.gpt.setRecompute(recompute);
        if (parallel != null && (replayFile != null || ewc != null || fisherExamples > 0))
            throw new WaferException("--replay, --ewc and --fisher-examples run in one process: drop --parallel");
        if (replayFile == null && cmd.commandLine().getParseResult().hasMatchedOption("--replay-ratio"))
            throw new WaferException("--replay-ratio without --replay: nothing to replay");
        ai.wafer.train.TrainingChecks.require(fisherExamples >= 0, "--fisher-examples", fisherExamples, ">= 0");
        if (fisherExamples > 0 && kind != Peft.Kind.FULL)
            throw new WaferException("--fisher-examples is for --method full (got --method " + kind.cliName() + ")");
        job.continual(replayFile, replayRatio, batchSize, ewc);
        float rate = lr != null ? lr : Finetuner.Options.defaultLr(kind);
        var opt = new Finetuner.Options(epochs, batchSize, gradAccum, rate, LrSchedule.parse(schedule), warmupRatio, 0f,
                new AdamW.Hyper(0.9f, 0.999f, 1e-8f, weightDecay), gradClip, job.maxLength, evalEvery, patience, seed, !noProgress, side);
        // after the model, data and options are checked, so that --overwrite empties nothing for a refused run
        if (overwrite && mpi) throw new WaferException("--overwrite with --mpi: every rank would empty " + out + "; remove it before the run");
        OutputDir.claim(out, true, resume != null, overwrite, java.util.Arrays.asList(model, tokenizerDir, trainFile, devFile, replayFile));
        err.println("wafer: " + t + " with " + kind.cliName() + " on " + model + ": " + job.model.trainableShare()
                + (t.classifies() ? "; " + job.train.labels().size() + " labels" : "") + (recompute ? "; activations recomputed in backward" : ""));
        Finetuner.Result r;
        long sent = -1;
        if (parallel == null) r = job.run(opt, ck, out, err);
        else {
            // under MPI this process is one rank and holds the job's model; as threads, rank 0 does and the others get replicas
            IntFunction<FinetuneModel> rankModel = rank -> {
                FinetuneModel m = rank == 0 || mpi ? job.model : job.replica();
                m.gpt.setRecompute(recompute);
                return m;
            };
            var s = new DataParallelFinetune.Setup(rankModel, job.train, job.dev, opt, out, model.toString(), err, ParallelPretrain.timeout(commTimeout), ck);
            var pr = DataParallelFinetune.run(dataParallel(parallel), ParallelPretrain.Engine.of(mpi), s);
            if (!pr.lead()) return 0; // rank 0 writes the rest
            r = pr.run();
            sent = pr.bytesPerStep();
        }
        Plot.write(out, out.resolve("curves.png"));
        job.finish(out, merge);
        if (fisherExamples > 0) {
            job.writeFisher(out, fisherExamples);
            err.println("wafer: wrote " + out.resolve(ai.wafer.finetune.Ewc.FILE) + " (Fisher information over " + Math.min(fisherExamples, job.train.examples().size()) + " training examples)");
        }
        err.printf("wafer: %d steps in %.1f s%s; weights+grads+moments on the heap %.1f MB%s, peak heap %.0f MB; saved %s%s%n",
                r.steps(), r.seconds(), r.stoppedEarly() ? " (stopped early)" : "", r.stateBytes() / 1e6,
                r.mappedBytes() > 0 ? String.format(" (+ %.1f MB frozen weights mapped from the file)", r.mappedBytes() / 1e6) : "",
                r.peakHeapBytes() / 1e6, out + (sent < 0 ? "" : " (" + sent + " bytes sent per rank in the last step)"),
                r.bestStep() == 0 ? "" : String.format("; best dev (step %d): %s %.4f", r.bestStep(),
                        Evaluator.Scores.primaryName(t, job.model.problem() == SequenceClassifier.Problem.REGRESSION), r.bestScore()));
        return 0;
    }

    /** dp=N: fine-tuning splits the batch only (the model is small next to pretraining's; tp and pp are for pretrain). */
    static int dataParallel(String layout) {
        var l = ai.wafer.parallel.Layout.parse(layout);
        if (l.tp() > 1 || l.pp() > 1) throw new WaferException("finetune --parallel takes dp=N only (got " + layout + ")");
        return l.dp();
    }
}
