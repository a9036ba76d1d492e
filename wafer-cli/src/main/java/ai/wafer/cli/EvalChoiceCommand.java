package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.eval.ChoiceScorer;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code wafer eval-choice}: zero-shot multiple-choice accuracy, scoring each choice by its log-likelihood. */
@Command(name = "eval-choice", mixinStandardHelpOptions = true,
        description = "Zero-shot multiple-choice accuracy (HellaSwag/PIQA/ARC style); prints one JSON line.")
public final class EvalChoiceCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR") Path model;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "default: the model directory") Path tokenizer;
    @Option(names = "--data", required = true, paramLabel = "FILE.jsonl", description = "lines of {\"context\", \"choices\": [...], \"label\"}") Path data;

    @Option(names = "--num-fewshot", defaultValue = "0", paramLabel = "K", description = "solved examples in front of each item, as lm-evaluation-harness's k-shot (default ${DEFAULT-VALUE})") int fewshot;
    @Option(names = "--fewshot-data", paramLabel = "FILE.jsonl", description = "where the examples come from (default: --data itself, an item never its own example)") Path fewshotData;
    @Option(names = "--fewshot-seed", defaultValue = "1234", description = "seed of the examples' draw (default ${DEFAULT-VALUE}, lm-evaluation-harness's)") long fewshotSeed;

    @Override public Integer call() {
        if (fewshotData != null && fewshot == 0) throw new WaferException("--fewshot-data needs --num-fewshot K > 0");
        var items = ChoiceScorer.read(data);
        items = ChoiceScorer.withFewShot(items, fewshotData == null ? items : ChoiceScorer.read(fewshotData), fewshot, fewshotSeed);
        Gpt m = Checkpoint.load(model);
        Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : model);
        ChoiceScorer.Result r;
        try (var progress = new ai.wafer.track.Progress("eval-choice", items.size(), "items")) {
            r = ChoiceScorer.score(m, tok, items, progress);
            progress.accept(items.size());
        }
        double chance = items.stream().mapToDouble(i -> 1.0 / i.choices().size()).average().orElse(0);
        System.out.printf("{\"items\": %d, \"fewshot\": %d, \"acc\": %.4f, \"acc_norm\": %.4f, \"chance\": %.4f}%n", r.items(), fewshot, r.accuracy(), r.accuracyNorm(), chance);
        return 0;
    }
}
