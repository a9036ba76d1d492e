package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.TrainingChecks;
import ai.wafer.track.MetricsLog;
import ai.wafer.track.TensorBoardWriter;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The fine-tuning loop: epochs over length-bucketed, shuffled, padded batches (right or left: same results); K micro-batches of
 * forward and backward per AdamW step (each micro-batch's mean loss weighted 1/K); the scheduled
 * learning rate; evaluation on the dev set every N steps (and at the end of each epoch when N = 0), the
 * best model by the task's primary dev score saved to the output directory, and early stopping after
 * {@code patience} evaluations without improvement. Tracking as in pretraining: metrics.jsonl and
 * TensorBoard events (the command draws curves.png from them).
 */
public final class Finetuner {
    public record Options(int epochs, int batchSize, int gradAccum, float lr, LrSchedule.Kind schedule, float warmupRatio,
                          float minLrRatio, AdamW.Hyper hyper, float gradClip, int maxLength, int evalEvery, int patience,
                          long seed, boolean progressBar, Batcher.Side padding) {
        public Options {
            TrainingChecks.check(lr, hyper, gradClip);
            TrainingChecks.ratio(warmupRatio, "--warmup-ratio");
            TrainingChecks.ratio(minLrRatio, "--min-lr-ratio");
        }

        /** 3 epochs of batch 16, linear decay after 6% warmup, AdamW (0.9, 0.999, wd 0.01), clip 1, at {@link #defaultLr}. */
        public static Options defaults(ai.wafer.peft.Peft.Kind kind) {
            return new Options(3, 16, 1, defaultLr(kind), LrSchedule.Kind.LINEAR, 0.06f, 0f, new AdamW.Hyper(0.9f, 0.999f, 1e-8f, 0.01f),
                    1f, 256, 0, 0, 1337, false, Batcher.Side.RIGHT);
        }

        /** Few trainable parameters tolerate (and need) larger steps: 5e-5 full, 1e-3 BitFit/top-k, 2e-3 LoRA/adapters/prefix, 5e-3 (IA)3. */
        public static float defaultLr(ai.wafer.peft.Peft.Kind kind) {
            return switch (kind) {
                case FULL -> 5e-5f;
                case BITFIT, TOP_K -> 1e-3f;
                case IA3 -> 5e-3f;
                default -> 2e-3f;
            };
        }
    }

    /**
     * The step budget and training checkpoints: {@code maxSteps} &gt; 0 stops after that many optimiser steps, across as
     * many epochs as it takes (Hugging Face's max_steps: it replaces the epochs, and the schedule runs over it);
     * a checkpoint every {@code saveEvery} steps (0: none but the last step's, which every run writes), the newest
     * {@code keep} kept (0: all); {@code resume}: a checkpoint (or a run directory: its latest) to continue, or null.
     */
    public record Checkpoints(int maxSteps, int saveEvery, int keep, Path resume) {
        public static final Checkpoints NONE = new Checkpoints(0, 0, ai.wafer.train.Pretrainer.Reporting.KEEP, null);

        public Checkpoints {
            TrainingChecks.require(maxSteps >= 0, "--max-steps", maxSteps, ">= 0");
            TrainingChecks.require(saveEvery >= 0, "--save-every", saveEvery, ">= 0");
            TrainingChecks.require(keep >= 0, "--keep-checkpoints", keep, ">= 0");
        }
    }

    /**
     * The outcome: the best dev scores of this process's evaluations (null without dev data, or when a resumed run
     * found none better) and the best score and step of the whole run (NaN and 0 without dev data), steps run
     * (counting those before a resume), wall time, peak heap.
     */
    public record Result(Evaluator.Scores best, int bestStep, int steps, double seconds, long peakHeapBytes, boolean stoppedEarly,
                         long stateBytes, long mappedBytes, double bestScore) {}

    /**
     * Heap bytes of training state: every heap parameter's values, plus a gradient and AdamW's two moments for
     * each trainable one (activations not counted). Frozen parameters cost their values only, and nothing on the
     * heap when they are mapped from the checkpoint file ({@link #mappedBytes}).
     */
    public static long stateBytes(List<Parameter> params) {
        long n = 0;
        for (Parameter p : params) n += p.isMapped() ? 0 : p.trainable() ? 16L * p.size() : p.weights().bytes(); // values, grad, 2 moments
        return n;
    }

    /** Bytes of frozen weights read in place from the mapped checkpoint file (shared through the page cache). */
    public static long mappedBytes(List<Parameter> params) {
        long n = 0;
        for (Parameter p : params) if (p.isMapped()) n += p.weights().bytes();
        return n;
    }

    private final FinetuneModel fm;
    private final TaskData train, dev;
    private final Options opt;
    private Replicas replicas = Replicas.ONE;
    private Checkpoints checkpoints = Checkpoints.NONE;
    private Replay replay;
    private Ewc ewc;

    public Finetuner(FinetuneModel fm, TaskData train, TaskData dev, Options opt) {
        if (opt.gradAccum() < 1 || opt.batchSize() < 1 || opt.epochs() < 1)
            throw new ai.wafer.WaferException("epochs, batch size and grad-accum must be at least 1");
        this.fm = fm;
        this.train = train;
        this.dev = dev;
        this.opt = opt;
    }

    /** Runs as one of several data-parallel ranks ({@code ai.wafer.parallel.DataParallelFinetune}). */
    public Finetuner replicas(Replicas r) {
        this.replicas = r;
        return this;
    }

    /** Sets the step budget, checkpoints and resume. */
    public Finetuner checkpoints(Checkpoints c) {
        this.checkpoints = c;
        return this;
    }

    /** Continual learning: an earlier task's examples in every batch, the EWC penalty, or both (either may be null). */
    public Finetuner continual(Replay replay, Ewc ewc) {
        this.replay = replay;
        this.ewc = ewc;
        return this;
    }

    /**
     * Trains; saves the best model (or the last, without dev data) into {@code out} by {@link FinetuneModel#save}
     * ({@code baseName} goes into an adapter's base_model_name_or_path). Progress lines go to {@code log} (may be null;
     * {@code new PrintWriter(System.err, true)} for the console).
     */
    public Result run(Path out, String baseName, PrintWriter log) {
        List<Parameter> params = fm.parameters();
        fm.trainedMaxLength = opt.maxLength(); // saved with the model: evaluation scores as training did
        replicas.store(params); // the trainable parameters become slices of one buffer (this layout's)
        AdamW adamw = new AdamW(params, opt.hyper());
        Batcher batcher = new Batcher(opt.batchSize(), opt.maxLength(), fm.padId, opt.padding());
        int own = opt.batchSize() - (replay == null ? 0 : replay.perBatch()); // the new task's examples per batch
        Batcher ownBatcher = new Batcher(own, opt.maxLength(), fm.padId, opt.padding());
        int batchesPerEpoch = (train.examples().size() + own - 1) / own;
        int stepsPerEpoch = (batchesPerEpoch + opt.gradAccum() - 1) / opt.gradAccum();
        int total = checkpoints.maxSteps() > 0 ? checkpoints.maxSteps() : stepsPerEpoch * opt.epochs();
        LrSchedule sched = new LrSchedule(opt.schedule(), opt.lr(), Math.round(opt.warmupRatio() * total), total, opt.minLrRatio());
        fm.gpt.reserve(opt.batchSize(), Math.min(opt.maxLength(), Math.max(maxLength(train), replay == null ? 1 : maxLength(replay.earlier()))));
        if (log != null) log.println("wafer: " + fm.trainableShare() + "; " + train.examples().size() + " training examples, "
                + total + " steps (" + stepsPerEpoch + " per epoch) of " + opt.batchSize() + " x " + opt.gradAccum());
        long started = System.nanoTime();
        Evaluator.Scores best = null;
        double bestScore = Double.NaN;
        int bestStep = 0, sinceBest = 0, step = 0, startEpoch = 0, startBatch = 0;
        boolean stop = false;
        Map<String, String> identity = FinetuneCheckpoint.identity(fm, train, opt);
        if (replay != null) identity.put("--replay", replay.earlier().examples().size() + " examples of fingerprint "
                + FinetuneCheckpoint.fingerprint(replay.earlier()) + ", " + replay.perBatch() + " per batch");
        if (ewc != null) identity.put("--ewc", Float.toString(ewc.lambda()));
        Path ckpt = null;
        if (checkpoints.resume() != null) {
            Path from = ai.wafer.train.TrainCheckpoint.resolve(checkpoints.resume());
            FinetuneCheckpoint.Position p = FinetuneCheckpoint.load(from, identity, adamw);
            if (fm.method != null) fm.method.skipRandom(p.randomState());
            step = p.step();
            startEpoch = p.epoch();
            startBatch = p.batch();
            bestScore = p.bestScore() == null ? Double.NaN : p.bestScore();
            bestStep = p.bestStep();
            sinceBest = p.sinceBest();
            if (out != null) FinetuneCheckpoint.adopt(from, out);
            if (log != null) log.println("wafer: resumed from " + from + " at step " + step + (step >= total ? " (nothing left to do: raise --max-steps or --epochs to continue)" : ""));
        }
        resetPeaks();
        double[] lossAndTargets = new double[2];
        try (MetricsLog metrics = out == null ? null : MetricsLog.openForResume(out, step);
             TensorBoardWriter tb = out == null ? null : TensorBoardWriter.create(out)) {
            if (tb != null && step > 0) tb.resumedAt(step); // TensorBoard drops the steps a resume redoes
            ProgressBar bar = opt.progressBar() ? new ProgressBarBuilder().setTaskName("finetune").setInitialMax(total)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500).showSpeed().setUnit(" steps", 1)
                    .startsFrom(step, java.time.Duration.ZERO).build() : null;
            try {
                // with --max-steps the epochs go on until the budget is spent; each epoch's seed fixes its batch order
                for (int epoch = startEpoch; step < total && !stop; epoch++) {
                    fm.setTraining(true);
                    List<Batcher.Batch> batches = replay == null ? batcher.batches(train.examples(), true, opt.seed() + epoch)
                            : replay.batches(ownBatcher, batcher, train.examples(), opt.seed(), epoch);
                    List<Batcher.Batch> mine = replicas.rows(batches);
                    for (int from = epoch == startEpoch ? startBatch : 0; from < batches.size() && step < total && !stop; from += opt.gradAccum()) {
                        long t0 = System.nanoTime();
                        int K = Math.min(opt.gradAccum(), batches.size() - from);
                        fm.zeroGrad();
                        double loss = 0;
                        long tokens = 0;
                        for (int k = 0; k < K; k++) {
                            Batcher.Batch b = mine.get(from + k), g = batches.get(from + k);
                            if (fm.method != null) fm.method.beginMicroBatch((long) replicas.firstRow(g) * g.length());
                            lossAndTargets[0] = b.size() > 0 ? fm.forward(b) : 0;
                            lossAndTargets[1] = b.size() > 0 ? fm.validTargets() : 0;
                            replicas.sumLoss(lossAndTargets); // over data-parallel ranks: the global micro-batch's
                            double sum = lossAndTargets[0];
                            int n = (int) lossAndTargets[1];
                            if (n > 0) {
                                loss += sum / n / K;
                                if (b.size() > 0) fm.backward(1f / ((float) n * K));
                            }
                            for (int l : batches.get(from + k).lengths()) tokens += l;
                        }
                        replicas.sumGradients();
                        double penalty = ewc == null ? 0 : ewc.addGradient(); // before the norm is clipped, as any gradient
                        loss += penalty;
                        float lr = sched.at(step);
                        double norm = adamw.step(lr, opt.gradClip());
                        step++;
                        TrainingChecks.requireFinite(step, loss, norm, (bestStep > 0 ? out + " holds the model of step " + bestStep + ", the last finite one"
                                : "no model was saved") + (ckpt != null ? "; the last checkpoint is " + ckpt : ""));
                        Map<String, Object> row = new LinkedHashMap<>();
                        row.put("step", step);
                        row.put("epoch", epoch + (double) (from + K) / batches.size());
                        row.put("loss", loss);
                        if (ewc != null) row.put("ewc_penalty", penalty);
                        row.put("lr", lr);
                        row.put("grad_norm", norm);
                        row.put("tokens_per_s", tokens / ((System.nanoTime() - t0) / 1e9));
                        boolean epochEnd = from + K >= batches.size();
                        boolean evalNow = dev != null && (step == total || (opt.evalEvery() > 0 ? step % opt.evalEvery() == 0 : epochEnd));
                        if (evalNow) {
                            Evaluator.Scores s = Evaluator.run(fm, dev, opt.batchSize(), opt.maxLength(), opt.padding());
                            fm.setTraining(true);
                            row.put("eval_loss", s.loss());
                            for (var m : new java.util.TreeMap<>(s.metrics()).entrySet()) row.put("eval_" + m.getKey(), m.getValue());
                            if (bestStep == 0 || s.primary() > bestScore) {
                                best = s;
                                bestScore = s.primary();
                                bestStep = step;
                                sinceBest = 0;
                                if (out != null) fm.save(out, baseName);
                            } else if (opt.patience() > 0 && ++sinceBest >= opt.patience()) {
                                stop = true;
                            }
                            if (log != null) log.printf("step %d: dev loss %.4f%s%s%n", step, s.loss(),
                                    s.metrics().isEmpty() ? "" : s.metrics().entrySet().stream().sorted(Map.Entry.comparingByKey())
                                            .map(m -> String.format(", %s %.4f", m.getKey(), m.getValue())).collect(java.util.stream.Collectors.joining()),
                                    bestStep == step ? " (best so far, saved)" : stop ? " (no improvement in " + opt.patience() + " evaluations: stopping)" : "");
                        }
                        row.put("elapsed_s", (System.nanoTime() - started) / 1e9);
                        if (metrics != null) metrics.log(row);
                        if (tb != null) {
                            Map<String, Number> scalars = new LinkedHashMap<>();
                            for (var e : row.entrySet()) if (!e.getKey().equals("step")) scalars.put(e.getKey(), (Number) e.getValue());
                            tb.scalars(step, scalars);
                        }
                        // the last step is always a checkpoint (as pretraining's): a finished run resumes and continues
                        if (out != null && (step == total || stop || checkpoints.saveEvery() > 0 && step % checkpoints.saveEvery() == 0))
                            ckpt = FinetuneCheckpoint.save(out, checkpoints.keep(), new FinetuneCheckpoint.Position(step,
                                    epochEnd ? epoch + 1 : epoch, epochEnd ? 0 : from + K, fm.method == null ? new long[0] : fm.method.randomState(),
                                    bestStep == 0 ? null : bestScore, bestStep, sinceBest), identity, adamw);
                        if (bar != null) {
                            bar.stepTo(step);
                            bar.setExtraMessage(String.format(" loss %.3f%s", loss, bestStep == 0 ? "" : String.format(" | best dev %s %.4f",
                                    Evaluator.Scores.primaryName(fm.task, fm.problem() == ai.wafer.model.SequenceClassifier.Problem.REGRESSION), bestScore)));
                        }
                    }
                }
            } finally {
                if (bar != null) bar.close();
            }
            if (out != null && bestStep == 0) fm.save(out, baseName); // no dev data: the last model
        }
        fm.setTraining(false);
        return new Result(best, bestStep, step, (System.nanoTime() - started) / 1e9, peakHeap(), stop, stateBytes(params), mappedBytes(params), bestScore);
    }

    private static int maxLength(TaskData d) {
        int m = 1;
        for (var e : d.examples()) m = Math.max(m, e.length());
        return m;
    }

    private static void resetPeaks() {
        System.gc();
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) if (p.getType() == MemoryType.HEAP) p.resetPeakUsage();
    }

    /** Sum of the heap pools' peaks since the last reset, or the JVM's start (an upper bound of the peak live heap). */
    public static long peakHeap() {
        long s = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) if (p.getType() == MemoryType.HEAP) s += p.getPeakUsage().getUsed();
        return s;
    }
}
