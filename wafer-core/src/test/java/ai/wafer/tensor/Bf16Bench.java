package ai.wafer.tensor;

import java.util.Locale;
import java.util.Random;

/**
 * GFLOP/s of {@code --precision bf16}'s products (oneDNN, rounding and packing both inputs included; and the OpenBLAS
 * fallback) against the float32 OpenBLAS GEMM, on the 111M model's layer shapes (BT = 1024: B 4 x T 256), in one run.
 * With {@code WAFER_THREADS=1} it times the calling thread's CPU time (every path then runs on that thread), which
 * stays meaningful on a machine shared with other jobs; otherwise wall-clock time.
 * A measuring tool (no test runs it). Run, after {@code ./mvnw -q test-compile}:
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp target/classes:target/test-classes ai.wafer.tensor.Bf16Bench}
 */
public final class Bf16Bench {
    private static long now(boolean cpu) {
        return cpu ? java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime() : System.nanoTime();
    }

    public static void main(String[] args) {
        Gemm.setImpl(Gemm.Impl.BLAS);
        boolean cpu = Parallel.threads() == 1;
        Blas.setThreads(Parallel.threads());
        System.out.println("threads=" + Parallel.threads() + (cpu ? " (thread cpu time)" : " (wall time)") + "  " + Precision.select(Precision.bf16));
        Kernels fallback = new Bf16Kernels(Kernels.BLAS, false);
        System.out.printf("%-34s | %8s %8s %8s  GFLOP/s%n", "C = op(A) op(B), M x N x K", "fp32", "bf16", "fallback");
        int[][] shapes = { // M, N, K, transA, transB: a linear layer's forward, input gradient and weight gradient
            {1024, 3072, 768, 0, 0}, {1024, 768, 3072, 0, 1}, {768, 3072, 1024, 1, 0},
            {1024, 2304, 768, 0, 0}, {1024, 768, 2304, 0, 1}, {768, 2304, 1024, 1, 0},
            {1024, 50257, 768, 0, 1}, {1024, 768, 50257, 0, 0}, {50257, 768, 1024, 1, 0}};
        for (int round = 0; round < 3; round++)
            for (int[] s : shapes) {
                int M = s[0], N = s[1], K = s[2];
                boolean ta = s[3] == 1, tb = s[4] == 1;
                Random r = new Random(1);
                float[] A = new float[M * K], B = new float[K * N], C = new float[M * N];
                for (int i = 0; i < A.length; i++) A[i] = (float) r.nextGaussian();
                for (int i = 0; i < B.length; i++) B[i] = (float) r.nextGaussian();
                int lda = ta ? M : K, ldb = tb ? K : N;
                double[] g = new double[3];
                Kernels[] ks = {Kernels.BLAS, Bf16Kernels.OVER_BLAS, fallback};
                for (int k = 0; k < 3; k++) {
                    Kernels kk = ks[k];
                    int reps = M * (long) N * K > 1e10 ? 2 : 6;
                    kk.sgemm(ta, tb, M, N, K, 1f, A, 0, lda, B, 0, ldb, 0f, C, 0, N); // warm-up
                    long t0 = now(cpu);
                    for (int i = 0; i < reps; i++) kk.sgemm(ta, tb, M, N, K, 1f, A, 0, lda, B, 0, ldb, 0f, C, 0, N);
                    g[k] = 2.0 * M * N * K * reps / (now(cpu) - t0);
                }
                System.out.printf(Locale.ROOT, "%-34s | %8.1f %8.1f %8.1f%n", M + "x" + N + "x" + K + (ta ? " TN" : tb ? " NT" : " NN"), g[0], g[1], g[2]);
            }
    }
}
