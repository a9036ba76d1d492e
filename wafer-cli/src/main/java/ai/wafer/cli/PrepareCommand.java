package ai.wafer.cli;

import ai.wafer.data.Prepare;
import ai.wafer.io.OutputDir;
import ai.wafer.data.TextDocuments;
import ai.wafer.tokenizer.Tokenizer;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code wafer prepare}: text files to llm.c token shards for pretraining. */
@Command(name = "prepare", mixinStandardHelpOptions = true,
        description = {"Tokenise text into llm.c token shards (train_NNNNNN.bin, val_NNNNNN.bin), each document preceded by <|endoftext|>.",
                "Inputs: .jsonl files (the \"text\" field of each line is a document) or UTF-8 text files "
                        + "(blocks separated by blank lines are documents). Directories are read recursively."})
public final class PrepareCommand implements Callable<Integer> {
    @Option(names = "--tokenizer", required = true, paramLabel = "DIR") Path tokenizer;
    @Option(names = "--input", required = true, arity = "1..*", paramLabel = "FILE|DIR") List<Path> inputs;
    @Option(names = "--out", required = true, paramLabel = "DIR") Path out;
    @Option(names = "--val-fraction", defaultValue = "0", paramLabel = "F",
            description = "fraction of documents for validation, spread evenly (default ${DEFAULT-VALUE})") double valFraction;
    @Option(names = "--shard-tokens", defaultValue = "100000000", paramLabel = "N",
            description = "tokens per shard (default ${DEFAULT-VALUE})") long shardTokens;
    @Option(names = "--overwrite", description = "--out may hold earlier shards: empty it first (without this, an existing --out is refused)") boolean overwrite;

    @Override public Integer call() throws IOException {
        Tokenizer tok = Tokenizer.load(tokenizer);
        List<Path> in = new java.util.ArrayList<>(inputs);
        in.add(tokenizer);
        OutputDir.claim(out, false, false, overwrite, in);
        long total = TextDocuments.totalBytes(TextDocuments.files(inputs));
        long t0 = System.nanoTime();
        Prepare.Summary s;
        // a bar for a person at a terminal; a log file gets only the summary line
        try (ProgressBar bar = !ai.wafer.track.Terminal.interactive() ? null : new ProgressBarBuilder().setTaskName("prepare")
                .setInitialMax(total).setUnit(" MB", 1 << 20).setStyle(ProgressBarStyle.ASCII).showSpeed()
                .setConsumer(new ConsoleProgressBarConsumer(System.err)).build()) {
            s = Prepare.run(tok, inputs, out, valFraction, shardTokens, (bytes, tokens, docs) -> {
                if (bar == null) return;
                bar.stepTo(bytes);
                double sec = (System.nanoTime() - t0) / 1e9;
                bar.setExtraMessage(String.format(" %,d tokens, %,.0f tokens/s", tokens, tokens / Math.max(sec, 1e-9)));
            }, m -> System.err.println((bar == null ? "" : "\n") + "warning: " + m));
        }
        System.out.println(summary(s, out));
        return 0;
    }

    static String summary(Prepare.Summary s, Path out) {
        return String.format("%d files, %,d documents, %.1f MB -> %,d tokens (train %,d, val %,d) in %d shards under %s%n"
                        + "%.2f s: %,.0f tokens/s, %.2f MB/s; %d warnings",
                s.files(), s.documents(), s.bytes() / 1e6, s.tokens(), s.trainTokens(), s.valTokens(), s.shards().size(), out,
                s.seconds(), s.tokens() / s.seconds(), s.bytes() / 1e6 / s.seconds(), s.warnings().size());
    }
}
