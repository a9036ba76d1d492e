package ai.wafer.cli;

import ai.wafer.data.ConllReader;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.finetune.Baselines;
import ai.wafer.model.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code wafer baseline}: what a fine-tuned classifier must beat, in the same report layout as {@code wafer evaluate}. */
@Command(name = "baseline", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Score a simple baseline on a labelled file: most-frequent-tag-per-word (token classification)",
                "or multinomial naive Bayes on word counts (sequence classification), trained on --train."})
public final class BaselineCommand implements Callable<Integer> {
    @Option(names = "--task", required = true, description = "token-classification or sequence-classification") String task;
    @Option(names = "--train", required = true, paramLabel = "FILE") Path train;
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "the file to score") Path data;
    @Option(names = "--digits", defaultValue = "2") int digits;

    @Override public Integer call() {
        Task t = Task.parse(task);
        Baselines.Result r = switch (t) {
            case TOKEN_CLASSIFICATION -> Baselines.mostFrequentTag(ConllReader.read(train), ConllReader.read(data));
            case SEQUENCE_CLASSIFICATION -> Baselines.naiveBayes(TextClassificationReader.read(train), TextClassificationReader.read(data));
            default -> throw new ai.wafer.WaferException("baselines are for the classification tasks");
        };
        System.out.println((t == Task.TOKEN_CLASSIFICATION ? "token-level" : "sequence-level") + " classification report ("
                + (t == Task.TOKEN_CLASSIFICATION ? "most frequent tag per word" : "naive Bayes") + ")\n");
        System.out.print(r.report().toText(digits));
        return 0;
    }
}
