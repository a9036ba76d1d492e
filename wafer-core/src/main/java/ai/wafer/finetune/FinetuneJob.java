package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.SequenceClassifier.Problem;
import ai.wafer.model.Task;
import ai.wafer.peft.FineTuned;
import ai.wafer.peft.Peft;
import ai.wafer.tokenizer.Tokenizer;
import ai.wafer.tokenizer.TokenizerFiles;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One fine-tuning run as {@code wafer finetune} makes it, as a library call: {@link #prepare} loads the tokenizer, the
 * base model (on the heap or mapped, as the method needs), the data (sampled, length-checked) and sets the model up;
 * {@link #run} trains in this process (data-parallel runs give {@link #replica} to
 * {@code parallel.DataParallelFinetune} instead); {@link #finish} completes the output directory.
 */
public final class FinetuneJob {
    /**
     * What to fine-tune, on what: {@code tokenizer} (default: the model's), {@code dev} and {@code maxLength} (default:
     * the model's n_positions, at most 512) may be null; {@code maxTrain} &gt; 0 trains on a random sample of that many
     * examples; {@code seed} seeds the sample, the method's and the head's initialisation; {@code columns} and
     * {@code problem} say what a sequence-classification file holds.
     */
    public record Request(Path model, Path tokenizer, Task task, Path train, Path dev, Peft.Spec spec, Integer maxLength,
                          int maxTrain, long seed, WeightType baseType, TextClassificationReader.Columns columns, Problem problem) {
        public Request(Path model, Path tokenizer, Task task, Path train, Path dev, Peft.Spec spec, Integer maxLength, int maxTrain, long seed) {
            this(model, tokenizer, task, train, dev, spec, maxLength, maxTrain, seed, WeightType.F32, TextClassificationReader.Columns.DEFAULT,
                    Problem.SINGLE_LABEL);
        }

        Path tokenizerDir() { return tokenizer != null ? tokenizer : model; }
    }

    public final Request request;
    public final Tokenizer tokenizer;
    public final TaskData train, dev;
    /** Tokens per example: the request's, or the model's n_positions up to 512. */
    public final int maxLength;
    /** The model being fine-tuned (rank 0's in a data-parallel run). */
    public final FinetuneModel model;
    private Replay replay;
    private Ewc ewc;

    private FinetuneJob(Request request, Tokenizer tokenizer, TaskData train, TaskData dev, int maxLength, FinetuneModel model) {
        this.request = request;
        this.tokenizer = tokenizer;
        this.train = train;
        this.dev = dev;
        this.maxLength = maxLength;
        this.model = model;
    }

    /** Loads and checks everything a run needs; warnings about the data (unknown labels, truncation) go to {@code log} (may be null). */
    public static FinetuneJob prepare(Request r, PrintWriter log) {
        Peft.Kind kind = r.spec().kind();
        Tokenizer tok = Tokenizer.load(r.tokenizerDir());
        if (!Files.isRegularFile(r.model().resolve("config.json"))) throw new WaferException(r.model() + ": no config.json (not a model directory)");
        FinetuneModel earlier = continued(r);
        Gpt gpt = earlier != null ? earlier.gpt : loadBase(r.model(), kind);
        int room = gpt.config.nPositions() - (kind == Peft.Kind.PREFIX ? r.spec().prefixTokens() : 0);
        int maxLen = r.maxLength() != null ? r.maxLength() : Math.min(512, room); // a prefix's virtual tokens take positions too
        if (maxLen < 1 || maxLen > room)
            throw new WaferException("--max-length " + maxLen + " must be in [1, " + room + "] (the model's n_positions "
                    + gpt.config.nPositions() + (kind == Peft.Kind.PREFIX ? " minus the prefix" : "") + ")");
        if (r.task() != Task.SEQUENCE_CLASSIFICATION && (r.problem() != Problem.SINGLE_LABEL || !r.columns().equals(TextClassificationReader.Columns.DEFAULT)))
            throw new WaferException("--problem-type and the --*-field options are for --task sequence-classification");
        TaskData train = TaskData.load(r.task(), r.train(), tok, earlier == null ? null : earlier.labels, maxLen, r.columns(), r.problem())
                .sample(r.maxTrain(), r.seed());
        TaskData dev = r.dev() == null ? null : TaskData.load(r.task(), r.dev(), tok, train.labels(), maxLen, r.columns(), r.problem());
        if (log != null) {
            for (String w : train.warnings(maxLen)) log.println("wafer: warning: " + w);
            if (dev != null) for (String w : dev.warnings(maxLen)) log.println("wafer: warning: " + w);
        }
        if (r.baseType().kind() != WeightType.Kind.F32 && kind == Peft.Kind.FULL)
            throw new WaferException("--base-dtype " + r.baseType().name().toLowerCase() + ": full fine-tuning has no frozen base to keep in it");
        FinetuneModel fm = earlier != null ? earlier : FinetuneModel.create(gpt, r.task(), train.labels(), r.spec(), tok.eot(), r.seed(), r.problem());
        fm.columns = r.columns();
        r.baseType().applyToFrozen(fm.gpt);
        return new FinetuneJob(r, tok, train, dev, maxLen, fm);
    }

    /**
     * A whole fine-tuned classifier as {@code --model} (a first task's, for continual learning) is trained further with
     * its head and labels (the new data's labels it lacks are warned about and take no loss); null for a base model.
     */
    private static FinetuneModel continued(Request r) {
        Task saved = ai.wafer.peft.FineTuned.savedTask(r.model(), null);
        if (saved == null || !saved.classifies()) return null;
        if (saved != r.task() || r.spec().kind() != Peft.Kind.FULL)
            throw new WaferException(r.model() + " is a fine-tuned " + saved.cliName + " model: it trains further with --task "
                    + saved.cliName + " and --method full (other methods start from a base model)");
        FinetuneModel fm = FinetuneModel.continued(r.model(), saved);
        if (fm.problem() != r.problem())
            throw new WaferException(r.model() + " is a " + fm.problem().hfName + " model: give --problem-type " + fm.problem().hfName);
        return fm;
    }

    /**
     * Continual learning: {@code replayFile} (null: none), an earlier task's data of this task and the model's labels,
     * mixed into every batch at {@code ratio}; {@code ewcLambda} (null: none) the EWC penalty anchored at {@code --model},
     * whose Fisher file it needs (full fine-tuning only: the other methods' trainable tensors are not the model's).
     */
    public void continual(Path replayFile, float ratio, int batchSize, Float ewcLambda) {
        if (replayFile != null)
            replay = Replay.of(TaskData.load(request.task(), replayFile, tokenizer, train.labels(), maxLength, request.columns(), request.problem()), ratio, batchSize);
        if (ewcLambda != null) {
            if (request.spec().kind() != Peft.Kind.FULL) throw new WaferException("--ewc is for --method full (got --method " + request.spec().kind().cliName() + ")");
            ewc = Ewc.load(request.model(), ewcLambda, model.parameters().stream().filter(ai.wafer.model.Parameter::trainable).toList());
        }
    }

    /**
     * Writes {@code out}/{@link Ewc#FILE} after full fine-tuning: the diagonal empirical Fisher of the model saved in {@code out} (the best one,
     * the anchor of a later {@code --ewc} run from it) over {@code n} training examples.
     */
    public void writeFisher(Path out, int n) {
        FinetuneModel saved = FinetuneModel.continued(out, request.task());
        ai.wafer.io.SafeTensors.write(out.resolve(Ewc.FILE), Ewc.estimate(saved, train, n, request.seed(), maxLength));
    }

    /**
     * The base model for fine-tuning with {@code kind}: full fine-tuning writes every weight, so it loads onto the heap;
     * the other methods keep the frozen base mapped from its file (no heap copy, one page-cache copy for every process
     * on the machine).
     */
    public static Gpt loadBase(Path model, Peft.Kind kind) {
        return kind == Peft.Kind.FULL ? Checkpoint.load(model) : Checkpoint.loadFrozen(model);
    }

    /** Another data-parallel rank's model, identical to {@link #model} at the start: the same base, method and seed. */
    public FinetuneModel replica() {
        Request r = request;
        FinetuneModel earlier = continued(r);
        FinetuneModel fm = earlier != null ? earlier : FinetuneModel.create(loadBase(r.model(), r.spec().kind()), r.task(), train.labels(), r.spec(), tokenizer.eot(), r.seed(), r.problem());
        fm.columns = r.columns();
        r.baseType().applyToFrozen(fm.gpt);
        return fm;
    }

    /** Trains in this process and saves the best model (or adapter) into {@code out}; progress goes to {@code log} (may be null). */
    public Finetuner.Result run(Finetuner.Options opt, Path out, PrintWriter log) { return run(opt, Finetuner.Checkpoints.NONE, out, log); }

    /** As {@link #run(Finetuner.Options, Path, PrintWriter)}, with a step budget, checkpoints every N steps, or a resume. */
    public Finetuner.Result run(Finetuner.Options opt, Finetuner.Checkpoints ck, Path out, PrintWriter log) {
        return new Finetuner(model, train, dev, opt).checkpoints(ck).continual(replay, ewc).run(out, request.model().toString(), log);
    }

    /**
     * Completes {@code out} after training: a whole saved model gets the tokenizer beside it (an adapter's lives with
     * its base); with {@code merge}, a LoRA run also gets {@code merged/}, the best adapter merged into its base and
     * saved as a whole model with the tokenizer (Hugging Face's merge_and_unload).
     */
    public void finish(Path out, boolean merge) {
        Peft.Kind kind = request.spec().kind();
        if (!kind.addsTensors()) TokenizerFiles.copy(request.tokenizerDir(), out);
        if (!merge) return;
        if (kind != Peft.Kind.LORA) throw new WaferException("--merge is for --method lora");
        FineTuned best = FineTuned.load(request.model(), out, request.task()); // the best adapter, not the last state
        best.mergeForInference();
        best.saveWhole(out.resolve("merged"));
        TokenizerFiles.copy(request.tokenizerDir(), out.resolve("merged"));
    }
}
