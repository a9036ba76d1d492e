package ai.wafer.data;

import ai.wafer.WaferException;
import ai.wafer.io.TokenShard;
import ai.wafer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Text to llm.c token shards ({@code wafer prepare}). Documents ({@link TextDocuments}) are read in
 * batches of a few MB, encoded on all cores, and written in order, each preceded by {@code <|endoftext|>}
 * as llm.c does, so only one batch is ever in memory.
 *
 * <p>Document i (counting from 0 over all inputs) goes to validation when
 * {@code floor((i+1)*F) > floor(i*F)}: an even, deterministic spread of the fraction F. Shards are
 * {@code train_000000.bin, ...} and {@code val_000000.bin, ...}, each filled to {@code shardTokens}
 * (a document may continue into the next shard: the loader reads the shards as one stream).
 */
public final class Prepare {
    public record Summary(int files, long documents, long bytes, long trainTokens, long valTokens,
                          List<Path> shards, List<String> warnings, double seconds) {
        public long tokens() { return trainTokens + valTokens; }
    }

    /** Sees the running totals after each batch. */
    public interface Progress { void update(long bytes, long tokens, long documents); }

    private static final int BATCH_CHARS = 4 << 20;

    private final Tokenizer tok;
    private final Path out;
    private final double valFraction;
    private final long shardTokens;
    private final Split train, val;
    private final List<String> batch = new ArrayList<>();
    private final List<String> warnings = new ArrayList<>();
    private final Progress progress;
    private long batchChars, documents, bytes, tokens;

    private Prepare(Tokenizer tok, Path out, double valFraction, long shardTokens, Progress progress) {
        this.tok = tok;
        this.out = out;
        this.valFraction = valFraction;
        this.shardTokens = shardTokens;
        this.progress = progress;
        train = new Split("train");
        val = new Split("val");
    }

    /** Tokenises {@code inputs} into shards under {@code outDir}; warnings also go to {@code warn} as they happen. */
    public static Summary run(Tokenizer tok, List<Path> inputs, Path outDir, double valFraction, long shardTokens,
                              Progress progress, java.util.function.Consumer<String> warn) throws IOException {
        if (!(valFraction >= 0 && valFraction < 1)) throw new WaferException("--val-fraction must be in [0, 1), got " + valFraction);
        if (shardTokens < 1 || shardTokens > Integer.MAX_VALUE) throw new WaferException("--shard-tokens must be in 1.." + Integer.MAX_VALUE + ", got " + shardTokens);
        if (tok.eot() < 0) throw new WaferException(tok.dir() + ": the vocabulary has no " + Tokenizer.EOT_TEXT + " to separate documents");
        if (tok.vocabSize() > 65536) throw new WaferException(tok.dir() + ": vocabulary of " + tok.vocabSize() + " does not fit the uint16 shard format");
        List<Path> files = TextDocuments.files(inputs);
        if (files.isEmpty()) throw new WaferException(inputs + ": no input files");
        Files.createDirectories(outDir);
        long t0 = System.nanoTime();
        Prepare p = new Prepare(tok, outDir, valFraction, shardTokens, progress);
        TextDocuments.read(files, new TextDocuments.Sink() {
            @Override public void document(String text) throws IOException { p.add(text); }
            @Override public void warning(String m) { p.warnings.add(m); warn.accept(m); }
            @Override public void bytesRead(long n) { p.bytes += n; }
        });
        p.flush();
        if (p.documents == 0) throw new WaferException(inputs + ": no documents to tokenize (the inputs are empty)");
        p.train.close();
        p.val.close();
        List<Path> shards = new ArrayList<>(p.train.done);
        shards.addAll(p.val.done);
        return new Summary(files.size(), p.documents, p.bytes, p.train.total, p.val.total, shards, p.warnings,
                (System.nanoTime() - t0) / 1e9);
    }

    private void add(String text) throws IOException {
        batch.add(text);
        batchChars += text.length();
        if (batchChars >= BATCH_CHARS) flush();
    }

    private void flush() throws IOException {
        if (batch.isEmpty()) return;
        int[][] ids = tok.encodeBatch(batch);
        int[] sep = {tok.eot()};
        for (int[] doc : ids) {
            long i = documents++;
            Split split = Math.floor((i + 1) * valFraction) > Math.floor(i * valFraction) ? val : train;
            split.write(sep);
            split.write(doc);
            tokens += doc.length + 1;
        }
        batch.clear();
        batchChars = 0;
        progress.update(bytes, tokens, documents);
    }

    /** One output stream (train or val), cut into shards of {@code shardTokens}. */
    private final class Split {
        final String name;
        final List<Path> done = new ArrayList<>();
        TokenShard.Writer w;
        Path file;
        long total;

        Split(String name) { this.name = name; }

        void write(int[] t) throws IOException {
            int off = 0;
            while (off < t.length) {
                if (w == null) w = TokenShard.writer(file = out.resolve(String.format("%s_%06d.bin", name, done.size())));
                int take = (int) Math.min(t.length - off, shardTokens - w.count());
                w.append(t, off, take);
                off += take;
                total += take;
                if (w.count() == shardTokens) close();
            }
        }

        void close() throws IOException {
            if (w == null) return;
            w.close();
            done.add(file);
            w = null;
        }
    }
}
