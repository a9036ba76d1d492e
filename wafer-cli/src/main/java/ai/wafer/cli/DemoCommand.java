package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.eval.UnigramBaseline;
import ai.wafer.track.MetricsLog;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code wafer demo}: the whole flow on the data bundled in {@code data/}, in a few minutes on 2
 * cores. Each step is an ordinary wafer command, printed before it runs, so the demo doubles as a
 * tutorial: tokenize Brown text, pretrain a small GPT, measure it against a unigram baseline, draw its
 * curve, fine-tune it as a part-of-speech tagger with a classification report, and generate text.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run the whole flow on the bundled Brown corpus sample (about 5 minutes on 2 cores).")
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--data-dir", paramLabel = "DIR", description = "the bundled data (default: data/ beside the wafer launcher)")
    Path dataDir;
    @Option(names = "--out", defaultValue = "runs/demo", paramLabel = "DIR", description = "where the demo writes (default ${DEFAULT-VALUE}); replaced on each run")
    Path out;
    @Option(names = "--steps", defaultValue = "300", description = "pretraining steps (default ${DEFAULT-VALUE})") int steps;

    @Override public Integer call() throws IOException {
        Path data = dataDir != null ? dataDir : Path.of(System.getProperty("wafer.home", ".")).resolve("data");
        Path tokenizer = data.resolve("gpt2-tokenizer"), brown = data.resolve("brown");
        if (!Files.isRegularFile(brown.resolve("train.txt")))
            throw new WaferException(data + ": the bundled data is missing (expected brown/train.txt); give --data-dir");
        ai.wafer.io.AtomicFiles.deleteTree(out);
        Path shards = out.resolve("shards"), run = out.resolve("pretrain");
        long t0 = System.nanoTime();

        section("1. Tokenize the Brown corpus sample with the GPT-2 tokenizer into token shards");
        wafer("prepare", "--tokenizer", tokenizer.toString(), "--input", brown.resolve("train.txt").toString(),
                brown.resolve("val.txt").toString(), "--val-fraction", "0.1", "--out", shards.toString());

        section("2. Pretrain a small GPT (4 layers, d 128, GPT-2 vocabulary) with AdamW, cosine decay");
        wafer("pretrain", "--preset", "mini", "--data", shards.toString(), "--eval-data", shards.toString(),
                "--steps", String.valueOf(steps), "--batch-size", "8", "--seq-len", "128", "--lr", "2e-3",
                "--schedule", "cosine", "--warmup-steps", "20", "--eval-every", "50", "--eval-batches", "10",
                "--save-every", "100", "--tokenizer", tokenizer.toString(), "--out", run.toString());

        section("3. Held-out loss against a unigram baseline");
        String json = capture("eval-lm", "--model", run.toString(), "--data", shards.toString(),
                "--batch-size", "8", "--seq-len", "128", "--no-shuffle");
        double loss = new ObjectMapper().readTree(json).get("loss").asDouble();
        double unigram = UnigramBaseline.fit(TokenLoader.shards(shards, "train"), 50257)
                .crossEntropy(TokenLoader.shards(shards, "val"));
        System.out.printf("held-out loss %.3f nats/token (perplexity %.1f); unigram baseline %.3f (perplexity %.1f): %.2f nats better%n",
                loss, Math.exp(loss), unigram, Math.exp(unigram), unigram - loss);

        section("4. The training curve (also " + run.resolve("curves.png") + ")");
        System.out.print(asciiCurve(MetricsLog.read(run), 64, 12));

        section("5. Fine-tune it for part-of-speech tagging (token classification, all weights)");
        Path pos = out.resolve("pos");
        wafer("finetune", "--model", run.toString(), "--task", "token-classification",
                "--train", brown.resolve("pos-train.conll").toString(), "--dev", brown.resolve("pos-dev.conll").toString(),
                "--method", "full", "--epochs", "2", "--batch-size", "32", "--max-length", "128", "--lr", "1e-3",
                "--seed", "1", "--no-progress", "--out", pos.toString());

        section("6. Classification report on the held-out test sentences");
        wafer("evaluate", "--model", pos.toString(), "--task", "token-classification",
                "--data", brown.resolve("pos-test.conll").toString(), "--digits", "3");

        section("7. Generate from the pretrained model (KV-cache decoding, top-k sampling)");
        for (String prompt : new String[]{"The jury said", "In the morning", "The President of the United States"})
            wafer("generate", "--model", run.toString(), "--prompt", prompt, "--max-tokens", "24",
                    "--temperature", "0.8", "--top-k", "40", "--seed", "7", "--echo", "--quiet");

        System.out.printf("%ndemo done in %.0f s. Models: %s (pretrained), %s (POS tagger), Hugging Face checkpoints; try:%n"
                        + "  ./wafer chat --model %s%n  ./wafer serve --model %s%n",
                (System.nanoTime() - t0) / 1e9, run, pos, run, run);
        return 0;
    }

    private static void section(String title) {
        System.out.println();
        System.out.println("== " + title);
    }

    /** Runs a wafer command in this process, echoing it as a user would type it. */
    static void wafer(String... args) {
        System.out.println("$ wafer " + String.join(" ", args));
        int code = Wafer.commandLine().execute(args);
        if (code != 0) throw new WaferException("demo step 'wafer " + args[0] + "' failed (exit " + code + ")");
    }

    private static String capture(String... args) {
        System.out.println("$ wafer " + String.join(" ", args));
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true));
        int code;
        try { code = Wafer.commandLine().execute(args); } finally { System.setOut(old); }
        System.out.print(buf);
        if (code != 0) throw new WaferException("demo step 'wafer " + args[0] + "' failed (exit " + code + ")");
        return buf.toString();
    }

    /** Train loss (*) and eval loss (o) against step, as text: the curve without leaving the terminal. */
    static String asciiCurve(List<Map<String, Object>> rows, int width, int height) {
        List<double[]> train = new ArrayList<>(), eval = new ArrayList<>();
        for (var r : rows) {
            double step = MetricsLog.asDouble(r.get("step"));
            if (r.get("loss") != null) train.add(new double[]{step, MetricsLog.asDouble(r.get("loss"))});
            if (r.get("eval_loss") != null) eval.add(new double[]{step, MetricsLog.asDouble(r.get("eval_loss"))});
        }
        if (train.isEmpty()) return "(no metrics)\n";
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE, maxStep = train.getLast()[0];
        for (double[] p : train) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
        char[][] grid = new char[height][width];
        for (char[] row : grid) java.util.Arrays.fill(row, ' ');
        double l = lo, h = hi;
        java.util.function.BiConsumer<double[], Character> plot = (p, c) -> {
            int x = (int) Math.round((p[0] - 1) / Math.max(1, maxStep - 1) * (width - 1));
            int y = (int) Math.round((h - p[1]) / Math.max(1e-9, h - l) * (height - 1));
            grid[Math.max(0, Math.min(height - 1, y))][Math.max(0, Math.min(width - 1, x))] = c;
        };
        for (double[] p : train) plot.accept(p, '*');
        for (double[] p : eval) plot.accept(p, 'o');
        StringBuilder sb = new StringBuilder();
        for (int y = 0; y < height; y++) {
            double v = hi - (hi - lo) * y / (height - 1);
            sb.append(String.format("%6.2f |", v)).append(grid[y]).append('\n');
        }
        sb.append("       +").append("-".repeat(width)).append('\n');
        sb.append(String.format("        step 1%" + (width - 6) + "s%n", "step " + (long) maxStep));
        sb.append("        * train loss   o held-out loss\n");
        return sb.toString();
    }
}
