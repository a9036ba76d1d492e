package ai.wafer.cli;

import ai.wafer.model.KvCache;
import ai.wafer.WaferException;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.Sampler;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Profile;
import ai.wafer.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code wafer bench generate}: prompt (prefill) and decode tokens/s, fp32 and bf16, next to the
 * memory-bandwidth limit of decoding (every weight byte is read once per token).
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Benchmark generation: prefill and decode tokens/s per weight type, against the memory-bandwidth limit.")
public final class BenchGenerateCommand implements Callable<Integer> {
    @Option(names = "--preset", defaultValue = "cerebras-gpt-111m", description = "model shape, random weights (default: ${DEFAULT-VALUE})") String preset;
    @Option(names = "--model", paramLabel = "DIR", description = "a checkpoint instead of a preset") Path model;
    @Option(names = "--profile", description = "also print where a decoding step's time goes, per layer kind (the last run)") boolean profile;
    @Option(names = "--dtype", split = ",", defaultValue = "fp32,bf16,int8", description = "weight types to run (default: ${DEFAULT-VALUE})") List<String> dtypes;
    @Option(names = "--context", defaultValue = "256", description = "prompt length before decoding (default: ${DEFAULT-VALUE})") int context;
    @Option(names = "--decode", defaultValue = "64", description = "tokens decoded per run (default: ${DEFAULT-VALUE})") int decode;
    @Option(names = "--batch", defaultValue = "1", description = "sequences decoded together (default: ${DEFAULT-VALUE})") int batch;
    @Option(names = "--runs", defaultValue = "3", description = "timed runs after the warm-up; the best is reported") int runs;
    @Option(names = "--warmup", defaultValue = "8", description = "untimed runs first, per dtype: the JIT needs several prefills before the kernels are compiled (about 7 runs of prefill plus decode, measured; default ${DEFAULT-VALUE})") int warmup;

    @Override public Integer call() {
        if (context < 1 || decode < 1 || batch < 1 || runs < 1 || warmup < 0)
            throw new WaferException("--context, --decode, --batch and --runs must be positive, --warmup not negative");
        Gpt gpt = model != null ? Checkpoint.load(model) : Gpt.init(GptConfig.preset(preset), 0);
        GptConfig c = gpt.config;
        if (context + decode > c.nPositions()) throw new WaferException("--context + --decode exceeds n_positions " + c.nPositions());
        double bw = bandwidth();
        System.out.printf(Locale.ROOT, "model %s: %d layers, d_model %d, %,d parameters; threads %d; context %d, decode %d, batch %d%n",
                model != null ? model : preset, c.nLayer(), c.nEmbd(), gpt.parameterCount(), Parallel.threads(), context, decode, batch);
        System.out.printf(Locale.ROOT, "memory bandwidth (streaming read): %.1f GB/s%n", bw / 1e9);
        System.out.println("| dtype | prefill tok/s | decode tok/s | weight MB/token | bandwidth limit tok/s | fraction |");
        System.out.println("|---|---|---|---|---|---|");
        for (String d : dtypes) {
            InferenceModel m = new InferenceModel(gpt, WeightType.parse(d));
            double[] r = run(m);
            double limit = batch * bw / m.weightBytesPerToken();
            System.out.printf(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %.1f | %.0f%% |%n", d, r[0], r[1],
                    m.weightBytesPerToken() / 1e6, limit, 100 * r[1] / limit);
            if (profile) System.out.print(d + ", a decoding step of the last run:\n" + Profile.report(batch * decode));
        }
        return 0;
    }

    /** Best prefill and decode tokens/s over the runs (the warm-up runs excluded). */
    private double[] run(InferenceModel m) {
        int V = m.vocabSize();
        int[] prompt = new int[context];
        for (int i = 0; i < context; i++) prompt[i] = (i * 7919 + 13) % V;
        double bestPrefill = 0, bestDecode = 0;
        float[] logits = new float[batch * V];
        for (int r = 0; r < warmup + runs; r++) {
            KvCache[] caches = new KvCache[batch];
            long t0 = System.nanoTime();
            for (int b = 0; b < batch; b++) {
                caches[b] = m.newCache(context + decode);
                m.prefill(caches[b], prompt, 0, context, logits);
            }
            long t1 = System.nanoTime();
            int[] tok = new int[batch];
            Arrays.fill(tok, Sampler.argmax(logits, 0, V));
            if (profile && r == warmup + runs - 1) Profile.start();
            for (int s = 0; s < decode; s++) {
                m.decode(caches, tok, batch, logits);
                for (int b = 0; b < batch; b++) tok[b] = Sampler.argmax(logits, b * V, V);
            }
            long t2 = System.nanoTime();
            Profile.stop();
            if (r < warmup) continue;
            bestPrefill = Math.max(bestPrefill, batch * context / ((t1 - t0) / 1e9));
            bestDecode = Math.max(bestDecode, batch * decode / ((t2 - t1) / 1e9));
        }
        return new double[] {bestPrefill, bestDecode};
    }

    /** Bytes/s of a parallel streaming read of 1 GiB (larger than any cache), best of five passes. */
    static double bandwidth() {
        VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        float[] a = new float[1 << 28];
        Arrays.fill(a, 1f);
        double[] sink = new double[Parallel.threads()];
        double best = 0;
        for (int pass = 0; pass < 6; pass++) {
            long t = System.nanoTime();
            Parallel.forRange(a.length / (1 << 16), (w, from, to) -> {
                FloatVector acc0 = FloatVector.zero(S), acc1 = acc0, acc2 = acc0, acc3 = acc0;
                int L = S.length();
                for (int i = from << 16, end = to << 16; i < end; i += 4 * L) {
                    acc0 = acc0.add(FloatVector.fromArray(S, a, i));
                    acc1 = acc1.add(FloatVector.fromArray(S, a, i + L));
                    acc2 = acc2.add(FloatVector.fromArray(S, a, i + 2 * L));
                    acc3 = acc3.add(FloatVector.fromArray(S, a, i + 3 * L));
                }
                sink[w] += acc0.add(acc1).add(acc2).add(acc3).reduceLanes(VectorOperators.ADD);
            });
            double s = (System.nanoTime() - t) / 1e9;
            if (pass > 0) best = Math.max(best, 4.0 * a.length / s);
        }
        if (sink[0] == 42) System.out.print(""); // keep the loads alive
        return best;
    }
}
