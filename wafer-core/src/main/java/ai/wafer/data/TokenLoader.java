package ai.wafer.data;

import ai.wafer.WaferException;
import ai.wafer.io.TokenShard;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * Batches of (input, target) rows from memory-mapped llm.c token shards, read as one concatenated stream
 * of N tokens.
 *
 * <p>Rows are counted from the start of training: row r = k*B + b (batch k, row b). Each row is the T+1
 * tokens starting at {@code start(r)}; inputs are the first T, targets the last T (shifted by one).
 * <ul>
 *   <li>sequential: {@code start(r) = (r*T) mod (N-T-1)} — llm.c's layout, wrapping around for more epochs;
 *   <li>shuffled: the W = (N-T-1)/T (integer division) windows starting at multiples of T are visited in a
 *       new order each epoch: epoch e = r / W, {@code start(r) = perm_e[r mod W] * T}. perm_e is a
 *       Fisher–Yates shuffle of 0..W-1 (i from W-1 down to 1, swap i with j = (x >>> 1) mod (i+1)) where
 *       x are successive outputs of SplitMix64 seeded with {@code seed + e * 0x9E3779B97F4A7C15}.
 * </ul>
 * The whole position is the row counter, so {@link #state()} / {@link #restore} resume exactly.
 */
public final class TokenLoader implements AutoCloseable {
    /** Where the loader is; all longs so it serialises to JSON as is. {@code shuffled} is 0 or 1. */
    public record State(long rows, long tokens, long seqLen, long shuffled, long seed) {}

    private final TokenShard[] shards;
    private final long[] firstToken; // first global token index of each shard, plus N at the end
    private final List<Path> files;
    private final int batch, seqLen;
    private final boolean shuffle;
    private final long seed, n, span, windows;
    private long rows;
    private int[] perm;
    private long permEpoch = -1;

    public TokenLoader(List<Path> shardFiles, int batch, int seqLen, boolean shuffle, long seed) {
        if (shardFiles.isEmpty()) throw new WaferException("no token shards given");
        if (batch < 1 || seqLen < 1) throw new WaferException("batch size and sequence length must be >= 1, got " + batch + " and " + seqLen);
        this.files = List.copyOf(shardFiles);
        this.batch = batch;
        this.seqLen = seqLen;
        this.shuffle = shuffle;
        this.seed = seed;
        shards = new TokenShard[files.size()];
        firstToken = new long[files.size() + 1];
        try {
            for (int i = 0; i < shards.length; i++) {
                shards[i] = TokenShard.open(files.get(i));
                firstToken[i + 1] = firstToken[i] + shards[i].size();
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        n = firstToken[shards.length];
        span = n - seqLen - 1;
        windows = span / seqLen;
        if (span <= 0 || (shuffle && windows < 1)) {
            close();
            throw new WaferException(files + ": " + n + " tokens are too few for sequences of " + seqLen
                    + " (need at least " + (shuffle ? 2L * seqLen + 1 : seqLen + 2) + ")");
        }
        if (shuffle && windows > Integer.MAX_VALUE - 8) {
            close();
            throw new WaferException(files + ": " + windows + " windows are too many to shuffle; use a longer sequence");
        }
    }

    /** The {@code *.bin} files in {@code dir} whose names contain {@code split} ("train", "val"), sorted; a file is itself. */
    public static List<Path> shards(Path dirOrFile, String split) {
        if (Files.isRegularFile(dirOrFile)) return List.of(dirOrFile);
        try (Stream<Path> s = Files.list(dirOrFile)) {
            List<Path> out = new ArrayList<>(s.filter(p -> {
                String name = p.getFileName().toString();
                return name.endsWith(".bin") && name.contains(split);
            }).sorted().toList());
            if (out.isEmpty()) throw new WaferException(dirOrFile + ": no " + split + " token shards (*" + split + "*.bin)");
            return out;
        } catch (IOException e) {
            throw new WaferException(dirOrFile + ": cannot list token shards: " + e.getMessage(), e);
        }
    }

    /** Fills {@code inputs} and {@code targets} (B*T each, row-major) with the next batch. */
    public void nextBatch(int[] inputs, int[] targets) {
        int need = batch * seqLen;
        if (inputs.length < need || targets.length < need)
            throw new IllegalArgumentException("batch arrays need " + need + " ints, got " + inputs.length + " and " + targets.length);
        for (int b = 0; b < batch; b++, rows++) {
            long start = start(rows);
            int off = b * seqLen;
            copy(start, inputs, off, seqLen);
            copy(start + 1, targets, off, seqLen);
        }
    }

    /** The first token of row {@code r} (see the class comment). */
    long start(long r) {
        if (!shuffle) return Math.floorMod(r * seqLen, span);
        long epoch = r / windows;
        if (epoch != permEpoch) permutation(epoch);
        return (long) perm[(int) (r % windows)] * seqLen;
    }

    private void permutation(long epoch) {
        int w = (int) windows;
        if (perm == null) perm = new int[w];
        for (int i = 0; i < w; i++) perm[i] = i;
        long x = seed + epoch * 0x9E3779B97F4A7C15L;
        for (int i = w - 1; i > 0; i--) {
            x += 0x9E3779B97F4A7C15L; // SplitMix64
            long z = x;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z ^= z >>> 31;
            int j = (int) ((z >>> 1) % (i + 1));
            int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        permEpoch = epoch;
    }

    /** Copies global tokens [from, from+len) into dst, crossing shard boundaries as needed. */
    private void copy(long from, int[] dst, int off, int len) {
        int s = shardOf(from);
        while (len > 0) {
            long local = from - firstToken[s];
            int take = (int) Math.min(len, firstToken[s + 1] - from);
            shards[s].read(local, dst, off, take);
            from += take;
            off += take;
            len -= take;
            s++;
        }
    }

    private int shardOf(long token) {
        int i = Arrays.binarySearch(firstToken, token);
        if (i < 0) i = -i - 2;
        while (firstToken[i + 1] == token) i++; // skip empty shards
        return i;
    }

    public State state() { return new State(rows, n, seqLen, shuffle ? 1 : 0, seed); }

    /** Continues from a saved state; the shards, sequence length, mode and seed must be the same. */
    public void restore(State s) {
        if (s.tokens() != n || s.seqLen() != seqLen || s.shuffled() != (shuffle ? 1 : 0) || (shuffle && s.seed() != seed))
            throw new WaferException("cannot resume data position " + s + ": this loader has " + n + " tokens, sequence "
                    + seqLen + ", " + (shuffle ? "shuffled with seed " + seed : "sequential") + " (different data or settings)");
        if (s.rows() < 0) throw new WaferException("cannot resume data position " + s + ": negative row count");
        rows = s.rows();
    }

    /** The epoch the next row belongs to (fraction of passes over the data for sequential mode, rounded down). */
    public long epoch() { return shuffle ? rows / windows : rows * seqLen / span; }

    public long totalTokens() { return n; }
    public long windowsPerEpoch() { return windows; }
    public int batchSize() { return batch; }
    public int seqLen() { return seqLen; }

    @Override public void close() {
        for (TokenShard s : shards) if (s != null) s.close();
    }
}
