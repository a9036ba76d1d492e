package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.finetune.Evaluation;
import ai.wafer.model.Task;
import ai.wafer.plot.Plot;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code wafer evaluate}: scores a fine-tuned model (or base model + adapter) on a labelled file. */
@Command(name = "evaluate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Score a fine-tuned model on a labelled file: a per-label classification report (sklearn's layout);",
                "for IOB/IOB2/IOBES tags also entity-level reports (seqeval default and strict modes); for sequence",
                "classification also a confusion matrix (text and PNG); for causal LM the response loss and perplexity.",
                "--method prompt: the same reports for in-context classification by a base model (no fine-tuning)."})
public final class EvaluateCommand implements Callable<Integer> {
    @Spec CommandSpec cmd;

    @Option(names = "--model", paramLabel = "DIR", description = "a fine-tuned model, or the base model of --adapter (default with --adapter: the base it names)") Path model;
    @Option(names = "--adapter", paramLabel = "DIR", description = "an adapter directory (adapter_config.json + adapter_model.safetensors)") Path adapter;
    @Option(names = "--task", description = "token-classification, sequence-classification or causal-lm (default: as saved)") String task;
    @Option(names = "--data", required = true, paramLabel = "FILE") Path data;
    @Option(names = "--format", defaultValue = "text", description = "text or json (default ${DEFAULT-VALUE})") String format;
    @Option(names = "--digits", defaultValue = "2", description = "decimals in text reports (default ${DEFAULT-VALUE}, as sklearn)") int digits;
    @Option(names = "--batch-size", defaultValue = "32") int batchSize;
    @Option(names = "--padding-side", defaultValue = "right", description = "left or right (default ${DEFAULT-VALUE}); the pads are masked, so both give the same scores") String paddingSide;
    @Option(names = "--max-length", description = "tokens per example (default: what the model was fine-tuned with, else its n_positions, at most 512)") Integer maxLength;
    @Option(names = "--confusion-png", paramLabel = "FILE", defaultValue = "confusion-matrix.png",
            description = "sequence classification: where the confusion-matrix heatmap goes (default ${DEFAULT-VALUE})") Path png;
    @Option(names = "--text-field", description = "sequence classification: the JSONL field or CSV column of the text (default: as fine-tuned)") String textField;
    @Option(names = "--text-pair-field", paramLabel = "FIELD", description = "sequence classification: the second text of a pair (default: as fine-tuned)") String pairField;
    @Option(names = "--label-field", description = "sequence classification: the field or column of the label (default: as fine-tuned)") String labelField;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer directory (default: the model's)") Path tokenizerDir;
    @Option(names = "--method", defaultValue = "finetuned", description = "finetuned (default: the model as fine-tuned) or prompt (in-context "
            + "classification: the base model scores each label's verbaliser after a prompt of --shots demonstrations)") String method;
    @Option(names = "--shots", defaultValue = "0", paramLabel = "K", description = "prompt: demonstrations in front of each example (default ${DEFAULT-VALUE})") int shots;
    @Option(names = "--template", paramLabel = "FILE.json", description = "prompt: {\"instruction\", \"example\" (with {text}), \"separator\", \"verbalisers\": {label: text}} "
            + "(default: example \"Text: {text}\\nLabel:\", verbaliser \" \" + label, separator \"\\n\\n\")") Path template;
    @Option(names = "--fewshot-data", paramLabel = "FILE", description = "prompt: where demonstrations come from, a training split (default: --data, never the example itself)") Path fewshotData;
    @Option(names = "--fewshot-seed", defaultValue = "1234", description = "prompt: seed of the demonstrations' draw (default ${DEFAULT-VALUE})") long fewshotSeed;

    @Override public Integer call() throws Exception {
        if (!format.equals("text") && !format.equals("json")) throw new WaferException("--format must be text or json, got '" + format + "'");
        if (!method.equals("finetuned") && !method.equals("prompt")) throw new WaferException("--method must be finetuned or prompt, got '" + method + "'");
        boolean prompt = method.equals("prompt");
        var parsed = cmd.commandLine().getParseResult();
        for (String o : prompt ? new String[] {"--adapter", "--batch-size", "--padding-side", "--max-length", "--text-field", "--label-field", "--text-pair-field"} : new String[] {"--shots", "--template", "--fewshot-data", "--fewshot-seed"})
            if (parsed.hasMatchedOption(o)) throw new WaferException(o + (prompt ? " does not apply to --method prompt (the base model, one example at a time, the whole context)" : " needs --method prompt"));
        Evaluation e = prompt ? prompted() : finetuned();
        Path heatmap = e.confusion == null || png == null ? null : Plot.writeConfusion(e.confusion, png, "confusion matrix: " + data.getFileName());
        if (format.equals("json")) {
            var json = e.toMap();
            if (heatmap != null) json.put("confusion_png", heatmap.toString());
            System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(json));
        } else {
            System.out.print(e.toText(digits));
            if (heatmap != null) System.out.println("\n(heatmap: " + heatmap + ")");
        }
        return 0;
    }

    private Evaluation prompted() {
        if (model == null) throw new WaferException("--method prompt needs --model (the base model to prompt)");
        boolean conll = data.getFileName().toString().toLowerCase().endsWith(".conll");
        if (task != null && Task.parse(task) != Task.SEQUENCE_CLASSIFICATION || conll)
            throw new WaferException("--method prompt classifies sequences only; " + (conll ? data + " is CoNLL: token classification" : "--task " + task) + " is not supported by prompting");
        return Evaluation.prompt(new Evaluation.PromptRequest(model, tokenizerDir, data, fewshotData, template, shots, fewshotSeed), cmd.commandLine().getErr());
    }

    private Evaluation finetuned() {
        var request = new Evaluation.Request(model, adapter, task == null ? null : Task.parse(task), tokenizerDir, data, batchSize,
                maxLength, Batcher.Side.parse(paddingSide), new TextClassificationReader.Columns(textField, pairField, labelField));
        return Evaluation.run(request, cmd.commandLine().getErr());
    }
}
