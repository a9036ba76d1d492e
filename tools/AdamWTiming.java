import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.tensor.Precision;
import ai.wafer.train.AdamW;

/**
 * Milliseconds of one AdamW update (AdamW.apply) over the parameters of a preset (default gpt2-124m), bound to a flat
 * store as training binds them; the best of 8, under fp32 and under bf16 (where the update also writes the bf16
 * rounding of each matrix for the next pass, when oneDNN runs the products), alternating; and of the gradient norm
 * that clipping takes first (AdamW.gradNorm).
 * Run after a build:
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/AdamWTiming.java [PRESET]}
 */
public class AdamWTiming {
    public static void main(String[] args) {
        Gpt m = Gpt.init(GptConfig.preset(args.length > 0 ? args[0] : "gpt2-124m"), 1);
        FlatStore.of(m.parameters());
        AdamW opt = new AdamW(m.parameters(), AdamW.Hyper.defaults());
        for (int round = 0; round < 3; round++)
            for (Precision p : Precision.values()) {
                Precision.select(p);
                double best = Double.MAX_VALUE;
                for (int r = 0; r < 8; r++) {
                    long t0 = System.nanoTime();
                    opt.apply(1e-4f, 1f);
                    best = Math.min(best, (System.nanoTime() - t0) / 1e6);
                }
                System.out.printf("%s: AdamW.apply over %,d parameters: %.1f ms (best of 8)%n", p, m.parameterCount(), best);
            }
        double best = Double.MAX_VALUE;
        for (int r = 0; r < 8; r++) {
            long t0 = System.nanoTime();
            opt.gradNorm();
            best = Math.min(best, (System.nanoTime() - t0) / 1e6);
        }
        System.out.printf("AdamW.gradNorm: %.1f ms (best of 8)%n", best);
    }
}
