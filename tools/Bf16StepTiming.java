import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.tensor.Precision;
import ai.wafer.train.AdamW;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Training steps (forward, backward, AdamW) of a preset (default cerebras-gpt-111m, B 4, T 256) in fp32 and in bf16,
 * alternating in one process, timed in the main thread's CPU time: with {@code WAFER_THREADS=1} every kernel (Java,
 * OpenBLAS, oneDNN) runs on that thread, so the figure holds on a machine shared with other jobs. Run after a build:
 * {@code WAFER_THREADS=1 java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/Bf16StepTiming.java [PRESET] [ROUNDS]}
 */
public class Bf16StepTiming {
    public static void main(String[] args) {
        GptConfig cfg = GptConfig.preset(args.length > 0 ? args[0] : "cerebras-gpt-111m");
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3, B = 4, T = 256;
        Gpt model = Gpt.init(cfg, 0);
        FlatStore.of(model.parameters());
        AdamW opt = new AdamW(model.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
        SplittableRandom r = new SplittableRandom(0);
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) { x[i] = r.nextInt(cfg.vocabSize()); y[i] = r.nextInt(cfg.vocabSize()); }
        var mx = ManagementFactory.getThreadMXBean();
        double flops = 6.0 * model.parameterCount() * B * T; // the matrix products' share
        double[][] ms = new double[2][rounds];
        for (int round = -1; round < rounds; round++) // round -1: warm-up of both
            for (Precision p : Precision.values()) {
                String path = Precision.select(p);
                if (round == -1 && path != null) System.out.println(path);
                long t0 = mx.getCurrentThreadCpuTime();
                model.zeroGrad();
                float loss = model.forward(x, y, B, T);
                model.backward();
                opt.step(1e-4f, 1f);
                double t = (mx.getCurrentThreadCpuTime() - t0) / 1e6;
                if (round >= 0) ms[p.ordinal()][round] = t;
                System.out.printf("round %d %s: %.0f ms cpu, loss %.4f%n", round, p, t, loss);
            }
        for (Precision p : Precision.values()) {
            double[] s = ms[p.ordinal()].clone();
            Arrays.sort(s);
            System.out.printf("%s: median %.0f ms cpu/step (%.0f-%.0f), %.1f GFLOP/s of 6 x params x tokens%n", p, s[rounds / 2], s[0],
                    s[rounds - 1], flops / s[rounds / 2] / 1e6);
        }
    }
}
