package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.eval.ConfusionMatrix;
import ai.wafer.eval.EntityReport;
import ai.wafer.eval.Tagging;
import ai.wafer.finetune.Evaluator;
import ai.wafer.finetune.FinetuneModel;
import ai.wafer.model.Task;
import ai.wafer.finetune.TaskData;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;

/** {@code wafer evaluate}: scores a fine-tuned model (or base model + adapter) on a labelled file. */
@Command(name = "evaluate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Score a fine-tuned model on a labelled file: a per-label classification report (sklearn's layout);",
                "for IOB/IOB2/IOBES tags also entity-level reports (seqeval default and strict modes); for sequence",
                "classification also a confusion matrix (text and PNG); for causal LM the response loss and perplexity."})
public final class EvaluateCommand implements Callable<Integer> {
    @Spec CommandSpec cmd;
    private static final Pattern IOB = Pattern.compile("O|[BIES]-.+");

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "a fine-tuned model, or the base model of --adapter") Path model;
    @Option(names = "--adapter", paramLabel = "DIR", description = "an adapter directory (adapter_config.json + adapter_model.safetensors)") Path adapter;
    @Option(names = "--task", description = "token-classification, sequence-classification or causal-lm (default: as saved)") String task;
    @Option(names = "--data", required = true, paramLabel = "FILE") Path data;
    @Option(names = "--format", defaultValue = "text", description = "text or json (default ${DEFAULT-VALUE})") String format;
    @Option(names = "--digits", defaultValue = "2", description = "decimals in text reports (default ${DEFAULT-VALUE}, as sklearn)") int digits;
    @Option(names = "--batch-size", defaultValue = "32") int batchSize;
    @Option(names = "--padding-side", defaultValue = "right", description = "left or right (default ${DEFAULT-VALUE}); the pads are masked, so both give the same scores") String paddingSide;
    @Option(names = "--max-length", description = "tokens per example (default: the model's n_positions, at most 512)") Integer maxLength;
    @Option(names = "--confusion-png", paramLabel = "FILE", defaultValue = "confusion-matrix.png",
            description = "sequence classification: where the confusion-matrix heatmap goes (default ${DEFAULT-VALUE})") Path png;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer directory (default: the model's)") Path tokenizerDir;

    @Override public Integer call() throws Exception {
        if (!format.equals("text") && !format.equals("json")) throw new WaferException("--format must be text or json, got '" + format + "'");
        Batcher.Side side = Batcher.Side.parse(paddingSide);
        FinetuneModel fm = FinetuneModel.load(model, adapter, task == null ? null : Task.parse(task));
        Tokenizer tok = Tokenizer.load(tokenizerDir != null ? tokenizerDir : model);
        int room = fm.gpt.config.nPositions() - fm.gpt.positionOffset();
        int maxLen = maxLength != null ? maxLength : Math.min(512, room);
        if (maxLen < 1 || maxLen > room) throw new WaferException("--max-length " + maxLen + " must be in [1, " + room + "]");
        TaskData d = TaskData.load(fm.task, data, tok, fm.task.classifies() ? fm.labels : null, maxLen);
        for (String w : d.warnings(maxLen)) cmd.commandLine().getErr().println("wafer: warning: " + w);
        Evaluator.Scores s = Evaluator.run(fm, d, batchSize, maxLen, side);

        Map<String, Object> json = new LinkedHashMap<>();
        StringBuilder text = new StringBuilder();
        json.put("task", fm.task.cliName);
        json.put("examples", d.examples().size());
        json.put("loss", s.loss());
        if (!fm.task.classifies()) {
            json.put("perplexity", Math.exp(s.loss()));
            text.append(String.format("response loss %.4f, perplexity %.2f over %d examples%n", s.loss(), Math.exp(s.loss()), d.examples().size()));
        } else {
            String level = fm.task == Task.TOKEN_CLASSIFICATION ? "token-level" : "sequence-level";
            text.append(level).append(" classification report\n\n").append(s.report().toText(digits)).append('\n');
            json.put("report", s.report().toMap());
            if (fm.task == Task.TOKEN_CLASSIFICATION && looksIob(s.gold())) {
                List<List<String>> pred = iobOnly(s.pred());
                Tagging scheme = scheme(s.gold());
                EntityReport lenient = EntityReport.lenient(s.gold(), pred), strict = EntityReport.strict(s.gold(), pred, scheme);
                text.append("\nentity-level report (seqeval default mode)\n\n").append(lenient.toText(digits))
                        .append("\nentity-level report (seqeval strict mode, ").append(scheme).append(")\n\n").append(strict.toText(digits));
                json.put("entity_report", lenient.toMap());
                json.put("entity_report_strict", strict.toMap());
                json.put("scheme", scheme.name());
            }
            if (fm.task == Task.SEQUENCE_CLASSIFICATION) {
                List<String> g = new ArrayList<>(), p = new ArrayList<>();
                s.gold().forEach(g::addAll);
                s.pred().forEach(p::addAll);
                ConfusionMatrix cm = ConfusionMatrix.of(g, p);
                cm.writePng(png, "confusion matrix: " + data.getFileName());
                text.append("\nconfusion matrix (rows: gold, columns: predicted)\n\n").append(cm.toText())
                        .append("\n(heatmap: ").append(png).append(")\n");
                json.put("confusion_matrix", Map.of("labels", cm.labels(), "counts", cm.counts()));
                json.put("confusion_png", png.toString());
            }
        }
        if (format.equals("json")) System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(json));
        else System.out.print(text);
        return 0;
    }

    /** Every gold tag is O or prefix-dash-type: an entity tagging, worth an entity-level report. */
    static boolean looksIob(List<List<String>> gold) {
        boolean entity = false;
        for (List<String> s : gold)
            for (String t : s) {
                if (!IOB.matcher(t).matches()) return false;
                entity |= !t.equals("O");
            }
        return entity;
    }

    /** IOBES when E- or S- occurs; IOB2 when every entity starts with B-; else IOB1. */
    static Tagging scheme(List<List<String>> gold) {
        boolean iob1 = false;
        for (List<String> s : gold) {
            String prev = "O";
            for (String t : s) {
                if (t.startsWith("E-") || t.startsWith("S-")) return Tagging.IOBES;
                if (t.startsWith("I-") && !prev.substring(Math.min(2, prev.length())).equals(t.substring(2))) iob1 = true;
                prev = t;
            }
        }
        return iob1 ? Tagging.IOB1 : Tagging.IOB2;
    }

    /** Cut-off words (predicted "-") read as O for entity extraction. */
    private static List<List<String>> iobOnly(List<List<String>> pred) {
        List<List<String>> out = new ArrayList<>();
        for (List<String> s : pred) out.add(s.stream().map(t -> t.equals(Evaluator.CUT) ? "O" : t).toList());
        return out;
    }
}
