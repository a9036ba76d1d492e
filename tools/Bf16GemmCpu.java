import ai.wafer.tensor.Kernels;
import ai.wafer.tensor.Precision;

import java.lang.management.ManagementFactory;
import java.util.Arrays;

/**
 * CPU time of the process and of the calling thread over 20 bf16 GEMMs (1024 x 3072 x 768) through {@link Kernels},
 * three rounds: on a machine shared with other jobs, the process's CPU time per GEMM shows what OpenMP's idle threads
 * burn (compare {@code OMP_WAIT_POLICY=active} and {@code passive}). Run after a build:
 * {@code WAFER_THREADS=2 OMP_WAIT_POLICY=passive java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/Bf16GemmCpu.java}
 */
public class Bf16GemmCpu {
    public static void main(String[] args) {
        System.out.println(Precision.select(Precision.bf16));
        int M = 1024, N = 3072, K = 768;
        float[] A = new float[M * K], B = new float[K * N], C = new float[M * N];
        Arrays.fill(A, 1f);
        Arrays.fill(B, 1f);
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        var mx = ManagementFactory.getThreadMXBean();
        for (int r = 0; r < 3; r++) {
            long p0 = os.getProcessCpuTime(), t0 = mx.getCurrentThreadCpuTime(), w0 = System.nanoTime();
            for (int i = 0; i < 20; i++) Kernels.current().sgemm(false, false, M, N, K, 1f, A, 0, K, B, 0, N, 0f, C, 0, N);
            System.out.printf("process cpu %.0f ms, calling thread cpu %.0f ms, wall %.0f ms%n", (os.getProcessCpuTime() - p0) / 1e6,
                    (mx.getCurrentThreadCpuTime() - t0) / 1e6, (System.nanoTime() - w0) / 1e6);
        }
    }
}
