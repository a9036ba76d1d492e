package ai.wafer.tensor;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed team of worker threads for data-parallel loops over the cores.
 *
 * <p>{@link #forRange} splits {@code [0, n)} into one contiguous chunk per thread; the caller runs
 * chunk 0 itself. Dispatch allocates nothing (the body is stored in a field, workers are woken with
 * {@code unpark}), so kernels may call it inside training steps. A call made while a loop is already
 * running (from a worker, or nested) runs serially on the calling thread: kernels never deadlock by
 * nesting.
 *
 * <p>The thread count is {@code WAFER_THREADS} or the number of available processors.
 */
public final class Parallel {
    /** The body of a parallel loop: handles indices {@code [from, to)}; {@code worker} is 0..threads-1. */
    @FunctionalInterface
    public interface RangeBody { void run(int worker, int from, int to); }

    private static final int THREADS = threadsFromEnv();
    private static final Worker[] WORKERS = new Worker[THREADS];
    private static final AtomicInteger PENDING = new AtomicInteger();
    private static final Object LOCK = new Object();
    private static volatile Thread caller;
    private static volatile RangeBody body;
    private static volatile int total;
    private static volatile Throwable failure;
    /** Bumped by {@link #releaseCores}: an idle worker that sees it change stops spinning and parks. */
    private static volatile int released;

    static {
        for (int i = 1; i < THREADS; i++) {
            WORKERS[i] = new Worker(i);
            WORKERS[i].start();
        }
    }

    private Parallel() {}

    public static int threads() { return THREADS; }

    /**
     * Threads marked serial run every loop on themselves. In-process training ranks (one thread per
     * rank) use it: several ranks sharing the one team would queue on its lock, each rank waiting for
     * the others' loops, so each rank computes on its own thread instead.
     */
    private static final ThreadLocal<Boolean> SERIAL = ThreadLocal.withInitial(() -> Boolean.FALSE);

    /** Runs {@code r} with every {@link #forRange} on this thread executed serially on it. */
    public static void runSerially(Runnable r) {
        Boolean before = SERIAL.get();
        SERIAL.set(Boolean.TRUE);
        try { r.run(); } finally { SERIAL.set(before); }
    }

    /** True inside {@link #runSerially}. */
    public static boolean serialOnThisThread() { return SERIAL.get(); }

    private static int threadsFromEnv() {
        String s = System.getenv("WAFER_THREADS");
        if (s != null && !s.isBlank()) {
            try { return Math.max(1, Integer.parseInt(s.trim())); } catch (NumberFormatException ignored) { }
        }
        return Math.max(1, Runtime.getRuntime().availableProcessors());
    }

    /**
     * {@link #forRange} for a cheap loop over n elements (an elementwise op): on the calling thread when n is below
     * {@link #GRAIN}, where waking the team costs more than the loop (a decode step's residual adds and GELU of one
     * row: 0.7 ms of a 10 ms step when each woke the team, {@code bench generate --profile}).
     */
    public static void forElements(int n, RangeBody b) {
        if (n >= GRAIN) forRange(n, b);
        else if (n > 0) b.run(0, 0, n);
    }

    /**
     * Native code with its own thread team (oneDNN's OpenMP threads) is about to run on the cores: idle workers park
     * now instead of spinning out their wait. On two cores a spinning worker took a core from that team for the first
     * milliseconds of each product (a bf16 111M step 1-9% faster without it, BENCHMARKS.md).
     */
    static void releaseCores() { released++; }

    /** Elements below which {@link #forElements} runs serially: about 4 microseconds of a memory-bound loop. */
    static final int GRAIN = 1 << 14;

    /** Runs {@code b} over {@code [0, n)} on all threads and returns when every chunk is done. */
    public static void forRange(int n, RangeBody b) {
        if (n <= 0) return;
        if (THREADS == 1 || n == 1 || Thread.currentThread() instanceof Worker || SERIAL.get()) {
            b.run(0, 0, n);
            return;
        }
        synchronized (LOCK) {
            if (caller != null) { // nested call from the caller thread inside a running loop
                b.run(0, 0, n);
                return;
            }
            caller = Thread.currentThread();
            total = n;
            failure = null;
            body = b;
            PENDING.set(THREADS - 1);
            for (int i = 1; i < THREADS; i++) WORKERS[i].wake();
            Throwable f = null;
            try {
                runChunk(b, 0, n);
            } catch (Throwable t) {
                f = t;
            }
            // the workers finish their chunks even when the caller's threw: a worker that had not yet read the body
            // would find it cleared (and its error would surface in the next loop)
            int spins = 0;
            while (PENDING.get() > 0) {
                if (++spins < 20_000) Thread.onSpinWait(); else LockSupport.park();
            }
            body = null;
            caller = null;
            if (f == null) f = failure;
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error er) throw er;
            if (f != null) throw new IllegalStateException(f);
        }
    }

    private static void runChunk(RangeBody b, int worker, int n) {
        int from = (int) ((long) n * worker / THREADS), to = (int) ((long) n * (worker + 1) / THREADS);
        if (from < to) b.run(worker, from, to);
    }

    private static final class Worker extends Thread {
        private final int id;
        private volatile boolean go;

        Worker(int id) {
            super("wafer-worker-" + id);
            this.id = id;
            setDaemon(true);
        }

        void wake() {
            go = true;
            LockSupport.unpark(this);
        }

        @Override public void run() {
            while (true) {
                int spins = 0, seen = released;
                while (!go) {
                    if (++spins < 20_000 && released == seen) Thread.onSpinWait(); else LockSupport.park(this);
                }
                go = false;
                try {
                    runChunk(body, id, total);
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    Thread c = caller;
                    if (PENDING.decrementAndGet() == 0 && c != null) LockSupport.unpark(c);
                }
            }
        }
    }
}
