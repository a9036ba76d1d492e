package ai.wafer.tensor;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * GFLOP/s of the Java and OpenBLAS GEMM paths on Cerebras-GPT layer shapes, plus the machine's FMA
 * peak as seen from the Vector API. A measuring tool, not part of the product, so it lives with the
 * tests (no test runs it). Run, after {@code ./mvnw -q test-compile}:
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp target/classes:target/test-classes ai.wafer.tensor.GemmBench [quick] [nolm]}
 *
 * <p>Columns: wall-clock GFLOP/s on all threads for both paths, then one-thread GFLOP/s measured in
 * thread CPU time. The CPU-time columns stay meaningful on a machine shared with other jobs, where
 * wall-clock numbers on all cores swing by 2x.
 */
public final class GemmBench {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
    private static double peak1 = Double.NaN, peakN = Double.NaN;

    public static void main(String[] args) {
        List<String> opts = Arrays.asList(args);
        boolean quick = opts.contains("quick"), lm = !opts.contains("nolm");
        int T = Parallel.threads();
        System.out.printf(Locale.ROOT, "threads=%d  vector=%d floats  openblas=%s  load average=%.1f%n", T, S.length(),
                Blas.available() ? "yes" : "no (" + Blas.loadError() + ")",
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        peak1 = peak(1);
        peakN = peak(T);
        System.out.printf(Locale.ROOT, "FMA peak: 1 thread %.1f GFLOP/s (cpu time), %d threads %.1f GFLOP/s (wall)%n%n",
                peak1, T, peakN);
        System.out.printf(Locale.ROOT, "%-40s %3s | %8s %8s %6s | %8s %8s %6s%n", "C = op(A) op(B)", "op",
                "java", "blas", "%peak", "java-1T", "blas-1T", "%peak");
        int bt = 1024;
        for (int c : new int[] {768, 256}) {
            System.out.printf("-- BT=%d C=%d --%n", bt, c);
            layer(bt, c, 3 * c);
            layer(bt, c, c);
            layer(bt, c, 4 * c);
            layer(bt, 4 * c, c);
            if (lm) lmHead(bt, c, 50257, quick);
            if (quick) break;
        }
        System.out.println("-- attention-head sized: sgemmSerial (Java, one thread, cpu time) --");
        for (int n : new int[] {64, 128, 256}) {
            Shape s = new Shape(n, n, 64, false, true, 0f);
            System.out.printf(Locale.ROOT, "%-40s %3s | %51.1f%n", "scores [" + n + "x64]x[" + n + "x64]^T", "NT",
                    s.gflops(cpuTime(() -> s.serial())));
            Shape o = new Shape(n, 64, n, false, false, 0f);
            System.out.printf(Locale.ROOT, "%-40s %3s | %51.1f%n", "att@v [" + n + "x" + n + "]x[" + n + "x64]", "NN",
                    o.gflops(cpuTime(() -> o.serial())));
        }
    }

    /** The three GEMMs of a linear layer inp[bt,c] @ W[c,oc] (W stored [in,out], Conv1D style). */
    private static void layer(int bt, int c, int oc) {
        String s = String.format(Locale.ROOT, "[%dx%d]x[%dx%d]", bt, c, c, oc);
        row(s + " fwd", new Shape(bt, oc, c, false, false, 0f));  // out = inp @ W
        row(s + " dinp", new Shape(bt, c, oc, false, true, 0f));  // dinp = dout @ W^T
        row(s + " dW", new Shape(c, oc, bt, true, false, 1f));    // dW += inp^T @ dout
    }

    /** The tied LM head, wte stored [V, C]: logits = x @ wte^T, dx = dlogits @ wte, dwte += dlogits^T @ x. */
    private static void lmHead(int bt, int c, int v, boolean quick) {
        String s = String.format(Locale.ROOT, "LM head [%dx%d]x[%dx%d]^T", bt, c, v, c);
        row(s + " logits", new Shape(bt, v, c, false, true, 0f));
        if (quick) return;
        row(s + " dx", new Shape(bt, c, v, false, false, 0f));
        row(s + " dwte", new Shape(v, c, bt, true, false, 1f));
    }

    private static void row(String name, Shape s) {
        double java = s.gflops(wallTime(s::java));
        double blas = Blas.available() ? s.gflops(wallTime(s::blas)) : Double.NaN;
        double java1 = s.gflops(cpuTime(s::serial));
        double blas1 = Double.NaN;
        if (Blas.available()) {
            Blas.setThreads(1);
            blas1 = s.gflops(cpuTime(s::blas));
            Blas.setThreads(Parallel.threads());
        }
        System.out.printf(Locale.ROOT, "%-40s %3s | %8.1f %8.1f %5.0f%% | %8.1f %8.1f %5.0f%%%n", name, s.op(),
                java, blas, 100 * java / peakN, java1, blas1, 100 * java1 / peak1);
    }

    /** One GEMM problem with its operands: M x N output, inner K, beta 1 for accumulating weight grads. */
    private record Shape(int M, int N, int K, boolean tA, boolean tB, float beta, float[] a, float[] b, float[] c) {
        Shape(int M, int N, int K, boolean tA, boolean tB, float beta) {
            this(M, N, K, tA, tB, beta, rand(M * K, 1), rand(K * N, 2), new float[M * N]);
        }
        int lda() { return tA ? M : K; }
        int ldb() { return tB ? K : N; }
        String op() { return (tA ? "T" : "N") + (tB ? "T" : "N"); }
        double gflops(double seconds) { return 2.0 * M * N * K / seconds / 1e9; }
        void java() { Gemm.sgemmJava(tA, tB, M, N, K, 1f, a, 0, lda(), b, null, 0, ldb(), beta, c, 0, N, true); }
        void serial() { Gemm.sgemmSerial(tA, tB, M, N, K, 1f, a, 0, lda(), b, 0, ldb(), beta, c, 0, N); }
        void blas() { Blas.sgemm(tA, tB, M, N, K, 1f, a, 0, lda(), b, 0, ldb(), beta, c, 0, N); }
    }

    private static float[] rand(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = r.nextFloat() - 0.5f;
        return x;
    }

    /** Best wall seconds per call: warm up, then repeat for ~0.5 s (at least 3 calls). */
    private static double wallTime(Runnable f) {
        return best(f, System::nanoTime);
    }

    /** Best CPU seconds per call of the current thread (immune to time-slicing by other processes). */
    private static double cpuTime(Runnable f) {
        return best(f, MX::getCurrentThreadCpuTime);
    }

    private static double best(Runnable f, java.util.function.LongSupplier clock) {
        f.run();
        long w0 = System.nanoTime();
        f.run();
        long one = Math.max(1, System.nanoTime() - w0);
        int reps = (int) Math.max(3, Math.min(2000, 500_000_000L / one));
        long best = Long.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t0 = clock.getAsLong();
            f.run();
            best = Math.min(best, clock.getAsLong() - t0);
        }
        return Math.max(best, 1) * 1e-9;
    }

    /** GFLOP/s of independent vector FMA chains on {@code threads} threads (register-only, no memory). */
    private static double peak(int threads) {
        long iters = 20_000_000;
        float[] sink = new float[threads * S.length()];
        double best = 0;
        for (int rep = 0; rep < 5; rep++) {
            double s;
            if (threads == 1) {
                long t0 = MX.getCurrentThreadCpuTime();
                fmaLoop(iters, sink, 0);
                s = (MX.getCurrentThreadCpuTime() - t0) * 1e-9;
            } else {
                long t0 = System.nanoTime();
                Parallel.forRange(threads, (w, from, to) -> { for (int t = from; t < to; t++) fmaLoop(iters, sink, t); });
                s = (System.nanoTime() - t0) * 1e-9;
            }
            best = Math.max(best, threads * iters * 12.0 * 2 * S.length() / s / 1e9);
        }
        return best;
    }

    /** Twelve independent accumulators cover FMA latency x throughput (4 cycles x 2 ports, with slack). */
    private static void fmaLoop(long iters, float[] sink, int slot) {
        FloatVector x = FloatVector.broadcast(S, 0.999f), y = FloatVector.broadcast(S, 1e-7f);
        FloatVector a0 = y, a1 = y.add(y), a2 = a1.add(y), a3 = a2.add(y), a4 = a3.add(y), a5 = a4.add(y),
                    a6 = a5.add(y), a7 = a6.add(y), a8 = a7.add(y), a9 = a8.add(y), a10 = a9.add(y), a11 = a10.add(y);
        for (long i = 0; i < iters; i++) {
            a0 = a0.fma(x, y); a1 = a1.fma(x, y); a2 = a2.fma(x, y); a3 = a3.fma(x, y);
            a4 = a4.fma(x, y); a5 = a5.fma(x, y); a6 = a6.fma(x, y); a7 = a7.fma(x, y);
            a8 = a8.fma(x, y); a9 = a9.fma(x, y); a10 = a10.fma(x, y); a11 = a11.fma(x, y);
        }
        a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .intoArray(sink, slot * S.length());
    }
}
