package ai.wafer.tensor;

/**
 * How much of a bf16 layer product (111M shapes, M = B x T = 1024) is rounding and packing the inputs, against oneDNN's
 * GEMM alone: {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED
 * -cp "wafer-core/target/classes:wafer-core/target/test-classes:wafer-cli/target/lib/*" ai.wafer.tensor.Bf16PackBench}.
 */
public class Bf16PackBench {
    public static void main(String[] a) {
        Precision.select(Precision.bf16);
        Kernels k = Kernels.current();
        int M = 1024;
        int[][] shapes = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
        java.util.Random r = new java.util.Random(1);
        for (int rep = 0; rep < 3; rep++) {
            double tm = 0, tp = 0, tb = 0;
            for (int[] s : shapes) {
                int K = s[0], N = s[1];
                float[] A = new float[M * K], W = new float[K * N], C = new float[M * N];
                for (int i = 0; i < A.length; i++) A[i] = (float) r.nextGaussian();
                for (int i = 0; i < W.length; i++) W[i] = (float) r.nextGaussian();
                short[] pa = new short[M * K], pw = new short[K * N];
                Weights w = Weights.of(W);
                long best = Long.MAX_VALUE, bestP = Long.MAX_VALUE, bestB = Long.MAX_VALUE;
                for (int it = 0; it < 20; it++) {
                    k.newPass(); // as each forward: the weight is rounded and packed again
                    long t0 = System.nanoTime();
                    k.matmul(false, false, M, N, K, 1f, A, 0, K, w, 0, N, 0f, C, 0, N);
                    long t1 = System.nanoTime();
                    Parallel.forRange(M, (t, f, to) -> { for (int i = f; i < to; i++) Bf16Weights.round(A, i * K, pa, i * K, K); });
                    Parallel.forRange(K, (t, f, to) -> { for (int i = f; i < to; i++) Bf16Weights.round(W, i * N, pw, i * N, N); });
                    long t2 = System.nanoTime();
                    OneDnn.gemm(false, false, M, N, K, 1f, pa, K, pw, N, 0f, C, 0, N);
                    long t3 = System.nanoTime();
                    best = Math.min(best, t1 - t0); bestP = Math.min(bestP, t2 - t1); bestB = Math.min(bestB, t3 - t2);
                }
                tm += best; tp += bestP; tb += bestB;
                System.out.printf("%dx%dx%d: matmul %.2f ms (%.0f GFLOP/s), pack %.2f ms, oneDNN alone %.2f ms (%.0f GFLOP/s)%n", M, N, K, best / 1e6,
                        2.0 * M * N * K / best, bestP / 1e6, bestB / 1e6, 2.0 * M * N * K / bestB);
            }
            System.out.printf("total matmul %.2f ms, pack %.2f, gemm %.2f%n", tm / 1e6, tp / 1e6, tb / 1e6);
        }
    }
}
