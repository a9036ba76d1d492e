package ai.wafer.model;

import ai.wafer.WaferException;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Weight streaming for a model whose mapped weights exceed the memory: the first {@code resident} blocks stay in memory,
 * the others are read from the file as the pass reaches them and dropped after. Left to the page cache alone, a pass
 * over more weights than fit evicts the oldest pages first, which are exactly the ones the next pass needs first (a
 * cyclic scan defeats LRU: every page is read from disk every pass, and the process's resident set grows to all of
 * memory). Here the resident layers are never dropped, so each pass reads only the streamed ones, and while block l
 * computes, block l + 1 (l - 1 going backward) is read ahead on a thread of its own; the block just finished is paged
 * out ({@code MADV_PAGEOUT}: out of this process's resident set and out of the page cache). Cerebras streams weights
 * layer by layer through its wafer the same way, from MemoryX.
 *
 * <p>{@link Gpt} calls {@link #enter} before each block, forward (+1) and backward (-1).
 */
public final class WeightStream {
    /** Linux madvise advice values (asm-generic/mman-common.h). */
    private static final int MADV_PAGEOUT = 21, MADV_POPULATE_READ = 22;
    private static final long PAGE = 4096;
    /** A streamed pass slower than this is refused before it starts. */
    static final double MAX_SECONDS_PER_PASS = 600;
    private static final MethodHandle MADVISE = madvise();

    private final MemorySegment[][] layers;
    private final int resident;
    private final ExecutorService reader = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "wafer-weight-stream");
        t.setDaemon(true);
        return t;
    });
    private int ahead = -1;
    private CompletableFuture<Void> read = CompletableFuture.completedFuture(null);
    private final boolean[] touched;
    /** Bytes read from the file so far, and the nanoseconds the reads took (the disk's rate, for the report). */
    private long bytesRead, readNanos;

    private WeightStream(MemorySegment[][] layers, int resident) {
        this.layers = layers;
        this.resident = resident;
        this.touched = new boolean[layers.length];
    }

    /**
     * Streams {@code m}'s blocks when their mapped weights exceed {@code budget} bytes (0: the default, {@link #budget});
     * returns the stream
     * set on the model, or null when everything fits. Prints what it does. Refuses, before anything runs, a model whose
     * streamed pass would take longer than {@link #MAX_SECONDS_PER_PASS} at the rate the disk reads its first streamed block.
     */
    public static WeightStream attach(Gpt m, long budget) { return attach(m, budget, MAX_SECONDS_PER_PASS); }

    static WeightStream attach(Gpt m, long budget, double maxSecondsPerPass) {
        int L = m.h.length;
        MemorySegment[][] layers = new MemorySegment[L][];
        long blockBytes = 0, perLayer = 0;
        for (int l = 0; l < L; l++) {
            List<MemorySegment> s = new ArrayList<>();
            for (Parameter p : m.h[l].all()) {
                MemorySegment seg = p.weights().mapping();
                if (seg != null) s.add(seg);
            }
            layers[l] = s.toArray(MemorySegment[]::new);
            long b = s.stream().mapToLong(MemorySegment::byteSize).sum();
            blockBytes += b;
            perLayer = Math.max(perLayer, b);
        }
        if (perLayer == 0) return null;
        if (budget <= 0) {
            long rest = 0;
            for (Parameter p : m.parameters()) if (p.weights().mapping() != null && !p.name.startsWith("h.")) rest += p.weights().bytes();
            Runtime rt = Runtime.getRuntime();
            budget = budget(memTotal(), memAvailable(), rest, rt.totalMemory() - rt.freeMemory(), perLayer);
        }
        if (blockBytes <= budget) return null;
        int resident = (int) Math.max(0, Math.min(L - 1, budget / perLayer));
        WeightStream s = new WeightStream(layers, resident);
        long streamed = 0;
        for (int l = resident; l < L; l++) for (MemorySegment seg : layers[l]) streamed += seg.byteSize();
        // streamed blocks start out of memory, whatever read them before (a fingerprint, a conversion); the disk's rate
        // comes from the first one read cold
        for (int l = resident; l < L; l++) s.advise(l, MADV_PAGEOUT);
        s.readAhead(resident);
        s.read.join();
        double rate = s.bytesRead / (s.readNanos / 1e9), seconds = streamed / rate;
        System.err.printf("weight streaming: the blocks' %.2f GB of weights exceed the %.2f GB kept in memory; %s stay, "
                        + "blocks %d-%d (%.2f GB) are read from disk each pass at %.2f GB/s (about %.1f s a pass)%n",
                blockBytes / 1e9, Math.max(budget, 0) / 1e9, resident == 0 ? "no blocks" : "blocks 0-" + (resident - 1),
                resident, L - 1, streamed / 1e9, rate / 1e9, seconds);
        if (seconds > maxSecondsPerPass)
            throw new WaferException(String.format("streaming %.1f GB of weights per pass at the %.0f MB/s this disk reads would take %.0f s "
                    + "per token or step (over %.0f s): too slow to be useful; use a smaller or int8 model (wafer convert --dtype int8), "
                    + "or a machine with more memory", streamed / 1e9, rate / 1e6, seconds, maxSecondsPerPass));
        m.stream(s);
        return s;
    }

    /**
     * Before block l of a pass going in direction {@code dir} (+1 forward, -1 backward): waits for its read ahead,
     * starts reading the next streamed block in that direction, and pages out streamed blocks the pass has left.
     */
    void enter(int l, int dir) {
        if (l == ahead) read.join();
        for (int j = resident; j < layers.length; j++)
            if (touched[j] && j != l && j != ahead) { advise(j, MADV_PAGEOUT); touched[j] = false; }
        if (l >= resident) touched[l] = true;
        int next = dir > 0 ? Math.max(l + 1, resident) : l - 1;
        if (next >= resident && next < layers.length && next != ahead) readAhead(next);
    }

    /** Blocks that stay in memory; the rest are streamed. */
    public int resident() { return resident; }

    private void readAhead(int l) {
        ahead = l;
        touched[l] = true;
        MemorySegment[] segs = layers[l];
        read = read.thenRunAsync(() -> {
            long t = System.nanoTime();
            for (MemorySegment s : segs) {
                // the block in memory before its turn: one call that reads and maps every page (Linux 5.14+), faster
                // here than MemorySegment.load's touch of one page after another (tools/PopulateTiming.java, BENCHMARKS.md)
                if (!advise(s, MADV_POPULATE_READ)) s.load();
                bytesRead += s.byteSize();
            }
            readNanos += System.nanoTime() - t;
        }, reader);
    }

    /** Pages out block l: madvise on the whole pages inside each of its segments (a neighbour's partial pages are left). */
    private void advise(int l, int advice) {
        for (MemorySegment s : layers[l])
            if (!advise(s, advice) && advice == MADV_PAGEOUT) s.unload(); // a kernel before 5.4: MADV_DONTNEED, out of this process at least
    }

    /** madvise(advice) on the whole pages inside {@code s}; false when the call is missing or fails. */
    private static boolean advise(MemorySegment s, int advice) {
        long from = (s.address() + PAGE - 1) & -PAGE, to = (s.address() + s.byteSize()) & -PAGE;
        if (to <= from) return true;
        try {
            return MADVISE != null && (int) MADVISE.invokeExact(MemorySegment.ofAddress(from), to - from, advice) == 0;
        } catch (Throwable e) {
            throw new IllegalStateException("madvise", e);
        }
    }

    private static MethodHandle madvise() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("madvise").map(f -> linker.downcallHandle(f,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT))).orElse(null);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /**
     * The bytes of blocks kept in memory: the process aims at 65% of the machine's memory (less if less is available),
     * out of which come the rest of the model's mapped weights, the heap (what it holds now, and at least 2 GB, since
     * the collector grows it while the passes run) and the two blocks streaming through (the one computing, the one
     * read ahead). On a 24 GB machine a process streaming 13B in bf16 peaked at 15.8 GB generating, 16.7 GB in LoRA.
     */
    public static long budget(long memTotal, long memAvailable, long rest, long heap, long perLayer) {
        return Math.min((long) (0.65 * memTotal), (long) (0.75 * memAvailable)) - rest - Math.max(heap, 2_000_000_000L) - 2 * perLayer;
    }

    /** MemAvailable of /proc/meminfo in bytes; the JVM's maximum heap where there is none (not Linux). */
    public static long memAvailable() { return meminfo("MemAvailable:"); }

    /** MemTotal of /proc/meminfo in bytes; the JVM's maximum heap where there is none. */
    public static long memTotal() { return meminfo("MemTotal:"); }

    private static long meminfo(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo")))
                if (line.startsWith(key)) return 1024 * Long.parseLong(line.replaceAll("\\D+", ""));
        } catch (IOException | NumberFormatException ignored) {
            // not Linux: fall through
        }
        return Runtime.getRuntime().maxMemory();
    }
}
