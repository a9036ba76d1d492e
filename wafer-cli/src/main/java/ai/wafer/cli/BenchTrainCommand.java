package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.finetune.Finetuner;
import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Profile;
import ai.wafer.tensor.Gemm;
import ai.wafer.tensor.Parallel;
import ai.wafer.train.AdamW;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code wafer bench train}: the time of full training steps (forward, backward, clipped AdamW) on random
 * tokens, the same work as ../shared/bench/torch_gpt_bench.py measures. Untimed steps run until the JIT has
 * settled (three in a row within {@link #SETTLED} of each other), then the timed steps give min / median / max; a
 * spread over {@link #SETTLED} of the median is reported as too wide to trust.
 */
@Command(name = "train", mixinStandardHelpOptions = true, description = "Time training steps of a model shape on random tokens.")
public final class BenchTrainCommand implements Callable<Integer> {
    @Option(names = "--preset", description = "a model preset (else --n-layer/--n-embd/--n-head/--vocab-size)") String preset;
    @Option(names = "--n-layer", defaultValue = "4") int nLayer;
    @Option(names = "--n-embd", defaultValue = "256") int nEmbd;
    @Option(names = "--n-head", defaultValue = "4") int nHead;
    @Option(names = "--vocab-size", defaultValue = "50257") int vocab;
    @Option(names = "--batch-size", defaultValue = "4") int B;
    @Option(names = "--seq-len", defaultValue = "256") int T;
    @Option(names = "--steps", defaultValue = "5", description = "timed steps after the warm-up (default ${DEFAULT-VALUE})") int steps;
    @Option(names = "--max-warmup", defaultValue = "20", description = "untimed steps at most, until three in a row are within a tenth of each other (default ${DEFAULT-VALUE})") int maxWarmup;
    @Option(names = "--recompute", description = "activation recomputation, as pretrain --recompute") boolean recompute;
    @Option(names = "--profile", description = "also print where the time of a step goes, per layer kind") boolean profile;
    @Option(names = "--json", description = "one JSON line instead of text") boolean json;

    @Mixin PrecisionOption precision;

    @Override public Integer call() {
        if (steps < 1 || maxWarmup < 0) throw new WaferException("--steps must be positive and --max-warmup not negative");
        precision.apply();
        GptConfig cfg = preset != null ? GptConfig.preset(preset) : GptConfig.of(nLayer, nEmbd, nHead, vocab, Math.max(1024, T));
        Gpt model = Gpt.init(cfg, 0);
        model.setRecompute(recompute);
        FlatStore.of(model.parameters()); // as Pretrainer lays them out
        AdamW opt = new AdamW(model.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
        SplittableRandom r = new SplittableRandom(0);
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) { x[i] = r.nextInt(cfg.vocabSize()); y[i] = r.nextInt(cfg.vocabSize()); }
        // warm-up: until the last three steps agree (the JIT compiles the vector kernels over the first few steps)
        double[] last = new double[3];
        int warm = 0;
        while (warm < maxWarmup && (warm < 3 || spread(last) > SETTLED)) last[warm++ % 3] = step(model, opt, x, y);
        boolean settled = warm >= 3 && spread(last) <= SETTLED;
        if (profile) Profile.start();
        double[] ms = new double[steps];
        long alloc0 = allocatedBytes();
        for (int s = 0; s < steps; s++) ms[s] = step(model, opt, x, y);
        // a settled step allocates almost nothing; megabytes mean a kernel boxes vectors (a Vector API helper the JIT
        // did not inline), which also makes that kernel slow
        double allocMb = alloc0 < 0 ? -1 : (allocatedBytes() - alloc0) / (double) steps / (1 << 20);
        Profile.stop();
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double min = sorted[0], med = sorted[steps / 2], max = sorted[steps - 1], spread = (max - min) / med;
        double tokS = B * T / (med / 1e3);
        // training FLOPs: 6 per parameter per token (matmuls), plus attention's 12 * L * C * T per token (the whole score
        // matrix, the common convention, though the causal kernel skips most of its masked half)
        double flops = 6.0 * model.parameterCount() * B * T + 12.0 * cfg.nLayer() * cfg.nEmbd() * (double) T * B * T;
        double gflops = flops / (med / 1e3) / 1e9;
        long peak = Finetuner.peakHeap();
        if (json) {
            System.out.printf("{\"what\": \"train\", \"framework\": \"wafer\", \"gemm\": \"%s\", \"precision\": \"%s\", \"threads\": %d, \"layers\": %d, \"d_model\": %d, "
                            + "\"heads\": %d, \"vocab\": %d, \"params\": %d, \"batch\": %d, \"seq\": %d, \"ms_per_step\": %.1f, "
                            + "\"ms_min\": %.1f, \"ms_max\": %.1f, \"steps\": %d, \"warmup_steps\": %d, \"warmup_settled\": %b, \"spread\": %.3f, \"stable\": %b, "
                            + "\"tokens_per_s\": %.1f, \"gflops\": %.1f, \"peak_heap_mb\": %d, \"alloc_mb_per_step\": %.2f, \"recompute\": %b}%n",
                    Gemm.impl(), precision.precision, Parallel.threads(), cfg.nLayer(), cfg.nEmbd(), cfg.nHead(), cfg.vocabSize(), model.parameterCount(),
                    B, T, med, min, max, steps, warm, settled, spread, spread <= SETTLED, tokS, gflops, peak >> 20, allocMb, recompute);
        } else {
            System.out.printf("model: %d layers, d %d, %d heads, vocab %d, %,d parameters; batch %d x %d; %d threads; gemm %s, %s%s%n",
                    cfg.nLayer(), cfg.nEmbd(), cfg.nHead(), cfg.vocabSize(), model.parameterCount(), B, T, Parallel.threads(), Gemm.impl(),
                    precision.precision, recompute ? "; activations recomputed in backward" : "");
            System.out.printf("%.1f ms/step (median of %d after %d warm-up steps; min %.1f, max %.1f), %.0f tokens/s, %.1f GFLOP/s, peak heap %,d MB, "
                            + "allocated %.2f MB a step%n", med, steps, warm, min, max, tokS, gflops, peak >> 20, allocMb);
            if (!settled) System.out.printf("the warm-up steps had not settled after %d (--max-warmup)%n", warm);
            if (spread > SETTLED)
                System.out.printf("spread %.0f%% of the median (over %.0f%%): too wide to trust; the machine is busy or the JIT "
                        + "has not settled (raise --steps or --max-warmup)%n", 100 * spread, 100 * SETTLED);
        }
        if (profile) {
            // the products against their path's own speed on the MLP's shape (the largest layer product)
            double pathPeak = ai.wafer.tensor.Precision.peakGflops(B * T, cfg.nInner(), cfg.nEmbd(), 5);
            System.out.printf("product path alone (%s, %d x %d x %d, inputs already in its format): %.1f GFLOP/s%n",
                    precision.precision, B * T, cfg.nInner(), cfg.nEmbd(), pathPeak);
            System.out.print(Profile.report(steps, Profile.flops(cfg, B, T), pathPeak));
        }
        return 0;
    }

    /** Step times within this fraction of each other (max - min over the median, or the minimum for the warm-up) count as settled. */
    static final double SETTLED = 0.10;

    /** (max - min) / min of the step times. */
    static double spread(double[] ms) {
        double min = Double.MAX_VALUE, max = 0;
        for (double m : ms) { min = Math.min(min, m); max = Math.max(max, m); }
        return (max - min) / min;
    }

    /** Bytes allocated so far by all threads (-1 where the JVM cannot say). */
    private static long allocatedBytes() {
        var bean = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        return bean.isThreadAllocatedMemorySupported() ? bean.getTotalThreadAllocatedBytes() : -1;
    }

    /** One training step; its time in ms. */
    private double step(Gpt model, AdamW opt, int[] x, int[] y) {
        long t0 = System.nanoTime();
        model.zeroGrad();
        Profile.add("zero grad", t0); // outside the model, but part of every step
        model.forward(x, y, B, T);
        model.backward();
        long t = Profile.t();
        opt.step(1e-4f, 1f);
        Profile.add("adamw", t);
        return (System.nanoTime() - t0) / 1e6;
    }
}
