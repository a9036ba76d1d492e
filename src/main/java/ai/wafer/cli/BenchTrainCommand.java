package ai.wafer.cli;

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
 * {@code wafer bench train}: the median time of full training steps (forward, backward, clipped
 * AdamW) on random tokens, the same work as ../shared/bench/torch_gpt_bench.py measures.
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
    @Option(names = "--steps", defaultValue = "5", description = "timed steps after one warm-up step") int steps;
    @Option(names = "--profile", description = "also print where the time of a step goes, per layer kind") boolean profile;
    @Option(names = "--json", description = "one JSON line instead of text") boolean json;

    @Mixin PrecisionOption precision;

    @Override public Integer call() {
        precision.apply();
        GptConfig cfg = preset != null ? GptConfig.preset(preset) : GptConfig.of(nLayer, nEmbd, nHead, vocab, Math.max(1024, T));
        Gpt model = Gpt.init(cfg, 0);
        FlatStore.of(model.parameters()); // as Pretrainer lays them out
        AdamW opt = new AdamW(model.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
        SplittableRandom r = new SplittableRandom(0);
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) { x[i] = r.nextInt(cfg.vocabSize()); y[i] = r.nextInt(cfg.vocabSize()); }
        double[] ms = new double[steps];
        for (int s = -1; s < steps; s++) {
            if (s == 0 && profile) Profile.start();
            long t0 = System.nanoTime();
            model.zeroGrad();
            model.forward(x, y, B, T);
            model.backward();
            opt.step(1e-4f, 1f);
            if (s >= 0) ms[s] = (System.nanoTime() - t0) / 1e6;
        }
        Profile.stop();
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double med = sorted[steps / 2];
        double tokS = B * T / (med / 1e3);
        // training FLOPs: 6 per parameter per token (matmuls), plus attention's 12 * L * C * T per token (causal half not skipped)
        double flops = 6.0 * model.parameterCount() * B * T + 12.0 * cfg.nLayer() * cfg.nEmbd() * (double) T * B * T;
        double gflops = flops / (med / 1e3) / 1e9;
        long peak = Finetuner.peakHeap();
        if (json) {
            System.out.printf("{\"what\": \"train\", \"framework\": \"wafer\", \"gemm\": \"%s\", \"precision\": \"%s\", \"threads\": %d, \"layers\": %d, \"d_model\": %d, "
                            + "\"heads\": %d, \"vocab\": %d, \"params\": %d, \"batch\": %d, \"seq\": %d, \"ms_per_step\": %.1f, "
                            + "\"tokens_per_s\": %.1f, \"gflops\": %.1f, \"peak_heap_mb\": %d}%n",
                    Gemm.impl(), precision.precision, Parallel.threads(), cfg.nLayer(), cfg.nEmbd(), cfg.nHead(), cfg.vocabSize(), model.parameterCount(),
                    B, T, med, tokS, gflops, peak >> 20);
        } else {
            System.out.printf("model: %d layers, d %d, %d heads, vocab %d, %,d parameters; batch %d x %d; %d threads; gemm %s, %s%n",
                    cfg.nLayer(), cfg.nEmbd(), cfg.nHead(), cfg.vocabSize(), model.parameterCount(), B, T, Parallel.threads(), Gemm.impl(),
                    precision.precision);
            System.out.printf("%.1f ms/step (median of %d), %.0f tokens/s, %.1f GFLOP/s, peak heap %,d MB%n", med, steps, tokS, gflops, peak >> 20);
        }
        if (profile) System.out.print(Profile.report(steps));
        return 0;
    }
}
