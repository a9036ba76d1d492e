import ai.wafer.tensor.Activation;
import ai.wafer.tensor.Attention;
import ai.wafer.tensor.Gelu;

import java.lang.management.ManagementFactory;
import java.util.Random;

/**
 * Milliseconds of one layer's attention and GELU, forward and backward, at the Cerebras-GPT 111M shape (B 4, T 256,
 * C 768, 12 heads; GELU over B T 4C), in the calling thread's CPU time (steady under other load), best of 8 rounds
 * after 4 untimed ones. Run one-threaded after a build, in each checkout to compare:
 * {@code WAFER_THREADS=1 java --add-modules jdk.incubator.vector -cp "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/AttentionGeluTiming.java}
 */
public class AttentionGeluTiming {
    public static void main(String[] args) {
        int B = 4, T = 256, C = 768, H = 12, N = B * T * 4 * C;
        Random r = new Random(1);
        float[] qkv = new float[B * T * 3 * C], out = new float[B * T * C], att = new float[B * H * T * T];
        float[] dout = new float[B * T * C], dqkv = new float[B * T * 3 * C], scratch = new float[T * T];
        float[] x = new float[N], y = new float[N], d = new float[N], slope = new float[N];
        for (int i = 0; i < qkv.length; i++) qkv[i] = (float) r.nextGaussian();
        for (int i = 0; i < dout.length; i++) dout[i] = (float) r.nextGaussian();
        for (int i = 0; i < N; i++) { x[i] = (float) (2 * r.nextGaussian()); d[i] = (float) r.nextGaussian(); }
        String[] what = {"attention fwd", "attention bwd", "gelu fwd", "gelu bwd", "gelu_new fwd", "gelu_new bwd"};
        double[] best = new double[what.length];
        java.util.Arrays.fill(best, Double.MAX_VALUE);
        var bean = ManagementFactory.getThreadMXBean();
        for (int round = 0; round < 12; round++) {
            for (int k = 0; k < what.length; k++) {
                long t0 = bean.getCurrentThreadCpuTime();
                switch (k) {
                    case 0 -> Attention.forward(out, att, qkv, B, T, C, H, 0.125f, null);
                    case 1 -> Attention.backward(dqkv, dout, qkv, att, B, T, C, H, 0.125f, scratch, null);
                    case 2 -> Gelu.forward(Activation.GELU, y, x, slope, N); // training's forward keeps the slope
                    case 3 -> Gelu.backward(y, slope, d, N);
                    case 4 -> Gelu.forward(Activation.GELU_TANH, y, x, slope, N);
                    default -> Gelu.backward(y, slope, d, N);
                }
                if (round >= 4) best[k] = Math.min(best[k], (bean.getCurrentThreadCpuTime() - t0) / 1e6);
            }
        }
        for (int k = 0; k < what.length; k++) System.out.printf("%-14s %7.2f ms%n", what[k], best[k]);
    }
}
