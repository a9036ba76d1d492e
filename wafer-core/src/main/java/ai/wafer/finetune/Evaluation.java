package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.eval.ClassificationReport;
import ai.wafer.eval.ConfusionMatrix;
import ai.wafer.eval.EntityReport;
import ai.wafer.eval.PromptClassifier;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.eval.Tagging;
import ai.wafer.model.SequenceClassifier.Problem;
import ai.wafer.model.Task;
import ai.wafer.tokenizer.Tokenizer;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Scoring a fine-tuned model (or base model + adapter) on a labelled file, with the reports its task calls for: a
 * per-label classification report; entity-level reports (seqeval's default and strict modes) when the gold tags are
 * an entity tagging ({@link Tagging#isEntityTagging}); a confusion matrix for sequence classification; the response
 * loss and perplexity for causal LM. What {@code wafer evaluate} prints, as a library call.
 */
public final class Evaluation {
    /**
     * What to score: {@code adapter}, {@code task}, {@code tokenizer} and {@code maxLength} may be null (no adapter,
     * the saved task, the model's tokenizer, the model's context up to 512 tokens); {@code columns} the fields a sequence-classification
     * file is read from (null, or a null field: as the model was fine-tuned).
     */
    public record Request(Path model, Path adapter, Task task, Path tokenizer, Path data, int batchSize, Integer maxLength,
                          Batcher.Side padding, TextClassificationReader.Columns columns) {
        public Request(Path model, Path adapter, Task task, Path tokenizer, Path data, int batchSize, Integer maxLength,
                       Batcher.Side padding) {
            this(model, adapter, task, tokenizer, data, batchSize, maxLength, padding, null);
        }
    }

    public final Task task;
    /** What a sequence classifier's outputs mean (single label for the other tasks). */
    public final Problem problem;
    public final Path data;
    public final int examples;
    public final Evaluator.Scores scores;
    /** Entity-level reports and the scheme the gold tags follow; null unless the gold tags are an entity tagging. */
    public final EntityReport entities, strictEntities;
    public final Tagging scheme;
    /** Sequence classification's confusion matrix (null for other tasks). */
    public final ConfusionMatrix confusion;

    private Evaluation(Task task, Problem problem, Path data, int examples, Evaluator.Scores scores) {
        this.task = task;
        this.problem = problem;
        this.data = data;
        this.examples = examples;
        this.scores = scores;
        if (task == Task.TOKEN_CLASSIFICATION && Tagging.isEntityTagging(Evaluator.flat(scores.gold()))) {
            List<List<String>> pred = cutAsO(scores.pred());
            scheme = Tagging.detect(scores.gold());
            entities = EntityReport.lenient(scores.gold(), pred);
            strictEntities = EntityReport.strict(scores.gold(), pred, scheme);
        } else {
            scheme = null;
            entities = strictEntities = null;
        }
        boolean seq = task == Task.SEQUENCE_CLASSIFICATION && problem == Problem.SINGLE_LABEL;
        confusion = seq ? ConfusionMatrix.of(Evaluator.flat(scores.gold()), Evaluator.flat(scores.pred())) : null;
    }

    /**
     * Loads the model ({@link FinetuneModel#load}), its tokenizer and the data (warnings about it go to {@code log},
     * which may be null), scores the data and builds the reports.
     */
    public static Evaluation run(Request r, PrintWriter log) {
        if (r.model() == null && r.adapter() == null) throw new WaferException("give --model (a fine-tuned model or a base) or --adapter");
        Path model = r.model() != null ? r.model() : ai.wafer.peft.FineTuned.baseOf(r.adapter()); // an adapter names its base
        FinetuneModel fm = FinetuneModel.load(model, r.adapter(), r.task());
        Tokenizer tok = Tokenizer.load(r.tokenizer() != null ? r.tokenizer() : model);
        int room = fm.gpt.config.nPositions() - fm.gpt.positionOffset();
        // as the model was trained (saved with it), unless asked otherwise; else the context, at most 512
        int maxLen = r.maxLength() != null ? r.maxLength() : fm.trainedMaxLength > 0 ? Math.min(fm.trainedMaxLength, room) : Math.min(512, room);
        if (maxLen < 1 || maxLen > room) throw new WaferException("--max-length " + maxLen + " must be in [1, " + room + "]");
        TaskData d = TaskData.load(fm.task, r.data(), tok, fm.task.classifies() ? fm.labels : null, maxLen,
                columns(r.columns(), fm.columns), fm.problem());
        if (log != null) for (String w : d.warnings(maxLen)) log.println("wafer: warning: " + w);
        Evaluator.Scores s;
        // progress on stderr only where the caller takes messages (the command), not for a quiet library call
        try (var progress = log == null ? null : new ai.wafer.track.Progress("evaluate", d.examples().size(), "examples")) {
            s = Evaluator.run(fm, d, r.batchSize(), maxLen, r.padding(), progress == null ? done -> { } : progress);
        }
        return new Evaluation(fm.task, fm.problem(), r.data(), d.examples().size(), s);
    }

    private static TextClassificationReader.Columns columns(TextClassificationReader.Columns asked, TextClassificationReader.Columns saved) {
        if (asked == null) return saved;
        return new TextClassificationReader.Columns(asked.text() != null ? asked.text() : saved.text(),
                asked.pair() != null ? asked.pair() : saved.pair(), asked.label() != null ? asked.label() : saved.label());
    }

    /**
     * What {@code evaluate --method prompt} scores: a base model prompted with {@code shots} demonstrations from
     * {@code fewshotData} (null: from {@code data}, never the target), written by {@code template} (null: the default).
     */
    public record PromptRequest(Path model, Path tokenizer, Path data, Path fewshotData, Path template, int shots, long seed) {}

    /** In-context classification ({@link PromptClassifier}) with the reports of a fine-tuned sequence classifier; warnings to {@code log}. */
    public static Evaluation prompt(PromptRequest r, PrintWriter log) {
        var template = r.template() == null ? PromptClassifier.Template.DEFAULT : PromptClassifier.Template.read(r.template());
        var data = TextClassificationReader.read(r.data());
        var pool = r.fewshotData() == null ? data : TextClassificationReader.read(r.fewshotData());
        Gpt model = Checkpoint.load(r.model());
        Tokenizer tok = Tokenizer.load(r.tokenizer() != null ? r.tokenizer() : r.model());
        PromptClassifier.Result p;
        try (var progress = new ai.wafer.track.Progress("evaluate", data.size(), "examples")) {
            p = PromptClassifier.run(model, tok, data, pool, template, r.shots(), r.seed(), progress);
        }
        int P = model.config.nPositions();
        if (p.cutDemos() > 0) log.printf("wafer: warning: %d of %d prompts were longer than the model's %d positions: their demonstrations' texts were shortened to fit%n", p.cutDemos(), data.size(), P);
        if (p.cutLeft() > 0) log.printf("wafer: warning: %d of %d prompts did not fit in %d positions even with empty demonstration texts: they lost their first tokens (the demonstrations', then the target's)%n", p.cutLeft(), data.size(), P);
        List<List<String>> gold = p.gold().stream().map(List::of).toList(), pred = p.pred().stream().map(List::of).toList();
        var scores = new Evaluator.Scores(Task.SEQUENCE_CLASSIFICATION, p.loss(), gold, pred, ClassificationReport.of(p.gold(), p.pred()), null);
        return new Evaluation(Task.SEQUENCE_CLASSIFICATION, ai.wafer.model.SequenceClassifier.Problem.SINGLE_LABEL, r.data(), data.size(), scores);
    }

    /** The reports as text, decimals as {@code digits} (sklearn's and seqeval's layout). */
    public String toText(int digits) {
        StringBuilder text = new StringBuilder();
        if (!task.classifies()) {
            double loss = scores.loss();
            return text.append(String.format("response loss %.4f, perplexity %.2f over %d examples%n", loss, Math.exp(loss), examples)).toString();
        }
        if (scores.regression() != null)
            return text.append("regression (").append(problem).append(")\n\n").append(scores.regression().toText(Math.max(digits, 4))).toString();
        String level = task == Task.TOKEN_CLASSIFICATION ? "token-level" : problem == Problem.MULTI_LABEL ? "multi-label" : "sequence-level";
        text.append(level).append(" classification report\n\n").append(scores.report().toText(digits)).append('\n');
        if (entities != null)
            text.append("\nentity-level report (seqeval default mode)\n\n").append(entities.toText(digits))
                    .append("\nentity-level report (seqeval strict mode, ").append(scheme).append(")\n\n").append(strictEntities.toText(digits));
        if (confusion != null) {
            text.append("\nconfusion matrix (rows: gold, columns: predicted)\n\n").append(confusion.toText());
        }
        return text.toString();
    }

    /** The reports as a JSON-ready map (the keys of {@code wafer evaluate --format json}). */
    public Map<String, Object> toMap() {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("task", task.cliName);
        json.put("examples", examples);
        json.put("loss", scores.loss());
        if (!task.classifies()) {
            json.put("perplexity", Math.exp(scores.loss()));
            return json;
        }
        if (task == Task.SEQUENCE_CLASSIFICATION) json.put("problem_type", problem.hfName);
        if (scores.regression() != null) {
            json.put("regression", scores.regression().toMap());
            return json;
        }
        json.put("report", scores.report().toMap());
        if (entities != null) {
            json.put("entity_report", entities.toMap());
            json.put("entity_report_strict", strictEntities.toMap());
            json.put("scheme", scheme.name());
        }
        if (confusion != null) json.put("confusion_matrix", Map.of("labels", confusion.labels(), "counts", confusion.counts()));
        return json;
    }

    /** Cut-off words (predicted {@link Evaluator#CUT}) read as O for entity extraction. */
    private static List<List<String>> cutAsO(List<List<String>> pred) {
        List<List<String>> out = new ArrayList<>();
        for (List<String> s : pred) out.add(s.stream().map(t -> t.equals(Evaluator.CUT) ? "O" : t).toList());
        return out;
    }
}
