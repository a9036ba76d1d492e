package ai.wafer.cli;

import ai.wafer.data.Prepare;
import ai.wafer.data.TextDocuments;
import ai.wafer.tokenizer.Tokenizer;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.ToLongFunction;
import java.util.stream.Stream;

/**
 * {@code wafer bench tokenize}: tokens/s and MB/s of {@code wafer prepare} and of the tokenizer alone,
 * next to jtokkit's built-in r50k_base (tiktoken's GPT-2 ranks) on the same documents in the same run.
 * Standalone for now; meant to become {@code wafer bench tokenize}.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Benchmark wafer prepare and the tokenizer against jtokkit's r50k_base on the same text.")
public final class BenchTokenizeCommand implements Callable<Integer> {
    @Option(names = "--tokenizer", required = true, paramLabel = "DIR") Path tokenizer;
    @Option(names = "--input", required = true, arity = "1..*", paramLabel = "FILE") List<Path> inputs;
    @Option(names = "--rounds", defaultValue = "3", description = "timed rounds after one warm-up; the best is shown (default ${DEFAULT-VALUE})") int rounds;

    @Override public Integer call() throws IOException {
        Tokenizer tok = Tokenizer.load(tokenizer);
        Encoding r50k = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);
        List<Path> files = TextDocuments.files(inputs);
        List<String> docs = new ArrayList<>();
        TextDocuments.read(files, docs::add);
        long bytes = 0;
        for (String d : docs) bytes += d.getBytes(StandardCharsets.UTF_8).length;
        System.out.printf("input: %d files, %,d documents, %.2f MB of document text; %d cores, %s%n",
                files.size(), docs.size(), bytes / 1e6, Runtime.getRuntime().availableProcessors(), System.getProperty("java.vm.version"));

        // wafer prepare end to end (read, encode on all cores, write shards)
        double best = Double.MAX_VALUE;
        Prepare.Summary s = null;
        for (int r = 0; r <= rounds; r++) {
            Path out = Files.createTempDirectory("wafer-bench-prepare");
            try {
                s = Prepare.run(tok, inputs, out, 0, 100_000_000, (b, t, d) -> {}, m -> {});
                if (r > 0) best = Math.min(best, s.seconds());
            } finally {
                try (Stream<Path> w = Files.walk(out)) {
                    w.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
        System.out.printf("%-34s %,12d tokens %12s tokens/s %8.2f MB/s (file bytes)%n", "wafer prepare (all cores)",
                s.tokens(), String.format("%,.0f", s.tokens() / best), s.bytes() / 1e6 / best);

        // The two encoders take turns round by round, so load from other processes hits both alike.
        for (boolean parallel : new boolean[] {false, true}) {
            String how = parallel ? "all cores" : "1 thread";
            compare("wafer Tokenizer, " + how, d -> tok.encode(d).length,
                    "jtokkit r50k_base, " + how, d -> r50k.encodeOrdinary(d).toArray().length, docs, bytes, parallel); // both return arrays
        }
        return 0;
    }

    private void compare(String nameA, ToLongFunction<String> a, String nameB, ToLongFunction<String> b,
                         List<String> docs, long bytes, boolean parallel) {
        double bestA = Double.MAX_VALUE, bestB = Double.MAX_VALUE;
        long tokensA = 0, tokensB = 0;
        for (int r = 0; r <= rounds; r++) {
            long t0 = System.nanoTime();
            tokensA = count(docs, a, parallel);
            long t1 = System.nanoTime();
            tokensB = count(docs, b, parallel);
            long t2 = System.nanoTime();
            if (r > 0) { bestA = Math.min(bestA, (t1 - t0) / 1e9); bestB = Math.min(bestB, (t2 - t1) / 1e9); }
        }
        line(nameA, tokensA, bestA, bytes);
        line(nameB, tokensB, bestB, bytes);
    }

    private static long count(List<String> docs, ToLongFunction<String> f, boolean parallel) {
        return parallel ? docs.parallelStream().mapToLong(f).sum() : docs.stream().mapToLong(f).sum();
    }

    private static void line(String name, long tokens, double sec, long bytes) {
        System.out.printf("%-34s %,12d tokens %12s tokens/s %8.2f MB/s (text bytes)%n", name, tokens,
                String.format("%,.0f", tokens / sec), bytes / 1e6 / sec);
    }
}
