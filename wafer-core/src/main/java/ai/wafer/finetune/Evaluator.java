package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.eval.ClassificationReport;
import ai.wafer.eval.RegressionReport;
import ai.wafer.model.SequenceClassifier.Problem;

import ai.wafer.model.Task;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Runs a fine-tuned model over a task's data: mean loss, predictions and the classification report. */
public final class Evaluator {
    private Evaluator() {}

    /** Predicted for a word cut off by --max-length: never a label, so always an error, and left out of the report's rows. */
    public static final String CUT = "-";

    /**
     * Scores of one pass. {@code gold}/{@code pred} are per example (per word for token classification, one item per
     * sequence, a sequence's labels for multi-label, its number as text for regression); {@code report} is over all
     * items (null for causal LM and regression, which has {@code regression}). {@code loss} is the mean over targets
     * with a known label (over every label of every sequence for multi-label).
     */
    public record Scores(Task task, double loss, List<List<String>> gold, List<List<String>> pred, ClassificationReport report,
                         RegressionReport regression) {
        public double accuracy() { return report == null ? Double.NaN : report.accuracy(); }
        public double macroF1() { return report == null ? Double.NaN : report.table().macro().f1(); }

        /** The scores logged beside the loss (eval_ + key): accuracy and macro F1, or a regression's MSE, MAE and r. */
        public Map<String, Double> metrics() {
            if (regression != null) return Map.of("mse", regression.mse(), "mae", regression.mae(), "pearson", regression.pearson());
            return report == null ? Map.of() : Map.of("accuracy", accuracy(), "macro_f1", macroF1());
        }

        /**
         * The number early stopping and "best checkpoint" follow (higher is better): token accuracy, macro F1, -MSE for
         * regression, or -loss.
         */
        public double primary() {
            return switch (task) {
                case TOKEN_CLASSIFICATION -> accuracy();
                case SEQUENCE_CLASSIFICATION -> regression != null ? -regression.mse() : macroF1();
                case CAUSAL_LM -> -loss;
            };
        }

        public String primaryName() { return primaryName(task, regression != null); }

        /** The name of {@link #primary} for a task (a regression head's is the negated MSE). */
        public static String primaryName(Task task, boolean regression) {
            return switch (task) {
                case TOKEN_CLASSIFICATION -> "accuracy";
                case SEQUENCE_CLASSIFICATION -> regression ? "neg_mse" : "macro_f1";
                case CAUSAL_LM -> "neg_loss";
            };
        }
    }

    public static Scores run(FinetuneModel fm, TaskData data, int batchSize, int maxLength) {
        return run(fm, data, batchSize, maxLength, Batcher.Side.RIGHT);
    }

    public static Scores run(FinetuneModel fm, TaskData data, int batchSize, int maxLength, Batcher.Side padding) {
        return run(fm, data, batchSize, maxLength, padding, done -> { });
    }

    /** As {@link #run(FinetuneModel, TaskData, int, int, Batcher.Side)}, telling {@code progress} the examples scored so far. */
    public static Scores run(FinetuneModel fm, TaskData data, int batchSize, int maxLength, Batcher.Side padding,
                             java.util.function.LongConsumer progress) {
        fm.setTraining(false);
        long scored = 0;
        Batcher batcher = new Batcher(batchSize, maxLength, fm.padId, padding);
        Problem problem = fm.problem();
        List<List<String>> pred = new ArrayList<>(java.util.Collections.nCopies(data.examples().size(), (List<String>) null));
        double[] goldValues = new double[data.examples().size()], predValues = new double[goldValues.length];
        double lossSum = 0;
        long count = 0;
        for (Batcher.Batch b : batcher.batches(data.examples(), false, 0)) {
            lossSum += fm.forward(b);
            count += fm.validTargets();
            progress.accept(scored += b.size());
            if (!fm.task.classifies()) continue;
            if (problem != Problem.SINGLE_LABEL) { // the head kept its logits [B, K]
                float[] z = fm.seqHead.scores();
                for (int r = 0; r < b.size(); r++) {
                    int ex = b.examples()[r], K = fm.labels.size();
                    List<String> p = new ArrayList<>();
                    if (problem == Problem.REGRESSION) {
                        goldValues[ex] = data.examples().get(ex).values()[0];
                        predValues[ex] = z[r];
                        p.add(Float.toString(z[r]));
                    } else for (int k = 0; k < K; k++) if (z[r * K + k] > 0) p.add(fm.labels.get(k)); // sigmoid(z) > 0.5
                    pred.set(ex, p);
                }
                continue;
            }
            // forward left probabilities in the head's buffer; their argmax is the logits' argmax
            int[] ids = fm.predictFromLastForward(b);
            for (int r = 0; r < b.size(); r++) {
                int ex = b.examples()[r];
                if (fm.task == Task.SEQUENCE_CLASSIFICATION) { pred.set(ex, List.of(fm.labels.get(ids[r]))); continue; }
                int[] where = data.positions().get(ex);
                List<String> p = new ArrayList<>(where.length);
                for (int w : where) p.add(w < b.lengths()[r] ? fm.labels.get(ids[r * b.length() + b.starts()[r] + w]) : CUT);
                pred.set(ex, p);
            }
        }
        double loss = count == 0 ? Double.NaN : lossSum / count;
        if (count > 0 && !Double.isFinite(loss)) // no score to report (JSON has no NaN)
            throw new ai.wafer.WaferException(data.file() + ": the loss is " + loss + ": the model's weights are not finite (a diverged run?)");
        if (!fm.task.classifies()) return new Scores(fm.task, loss, List.of(), List.of(), null, null);
        return switch (problem) {
            case REGRESSION -> new Scores(fm.task, loss, data.gold(), pred, null, RegressionReport.of(goldValues, predValues));
            case MULTI_LABEL -> new Scores(fm.task, loss, data.gold(), pred, ClassificationReport.multiLabel(data.gold(), pred), null);
            case SINGLE_LABEL -> new Scores(fm.task, loss, data.gold(), pred, ClassificationReport.excluding(flat(data.gold()), flat(pred), Set.of(CUT)), null);
        };
    }

    /** Flattens per-example lists. */
    static List<String> flat(List<List<String>> xs) {
        List<String> out = new ArrayList<>();
        xs.forEach(out::addAll);
        return out;
    }
}
