package ai.wafer.parallel;

import ai.wafer.io.TokenShard;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.Pretrainer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A tiny model, tokens and the single-process reference run that every layout must reproduce. */
final class ParallelFixtures {
    private ParallelFixtures() {}

    static final GptConfig CFG = GptConfig.of(2, 32, 4, 97, 64);
    static final long SEED = 7;

    static Path tokens(Path dir, int n) {
        int[] t = new int[n];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < n; i++) t[i] = i % 5 == 0 ? 4 : r.nextInt(97);
        Path p = dir.resolve("train.bin");
        TokenShard.write(p, t);
        return p;
    }

    static Pretrainer.Options options(int steps, int batch, int seqLen, int accum) {
        return new Pretrainer.Options(steps, batch, seqLen, accum,
                new LrSchedule(LrSchedule.Kind.COSINE, 3e-3f, 1, steps, 0.1f), AdamW.Hyper.defaults(), 1.0f);
    }

    /**
     * Loss and gradient norm of each step (the norm catches a wrongly scaled gradient, which Adam's
     * update would hide), then copies of every parameter, in model order.
     */
    record Run(List<Float> losses, List<Double> norms, List<float[]> params) {}

    static Run snapshot(List<Pretrainer.StepResult> steps, List<Parameter> ps) {
        List<float[]> out = new ArrayList<>();
        for (Parameter p : ps) out.add(p.array().clone());
        return new Run(steps.stream().map(Pretrainer.StepResult::loss).toList(),
                steps.stream().map(Pretrainer.StepResult::gradNorm).toList(), out);
    }

    /** A run in two parts, the second resumed from the first's checkpoint: their steps, the second's parameters. */
    static Run join(Run a, Run b) {
        List<Float> l = new ArrayList<>(a.losses());
        l.addAll(b.losses());
        List<Double> n = new ArrayList<>(a.norms());
        n.addAll(b.norms());
        return new Run(l, n, b.params());
    }

    static Run reference(Path shard, Pretrainer.Options o, int steps) { return reference(CFG, shard, o, steps); }

    static Run reference(GptConfig cfg, Path shard, Pretrainer.Options o, int steps) {
        Gpt m = Gpt.init(cfg, SEED);
        try (var loader = new ai.wafer.data.TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
            Pretrainer p = new Pretrainer(m, loader, o);
            List<Pretrainer.StepResult> rs = new ArrayList<>();
            for (int s = 0; s < steps; s++) rs.add(p.trainStep());
            return snapshot(rs, m.parameters());
        }
    }

    /**
     * Loss and gradient norm within 1e-5 relative; all parameters together within 1e-5 normwise
     * relative error (||a - b|| / ||a||), and each tensor within 1e-4. The per-tensor bound is looser
     * because a few gradients are sums that nearly cancel (the query bias's, for one): their float
     * rounding depends on the summation order, and Adam's normalised step turns it into visible
     * differences in that small tensor. A wrong shard or a missing reduction is off by far more.
     */
    static void assertSameRun(Run want, Run got, String what) {
        assertEquals(want.losses().size(), got.losses().size());
        for (int i = 0; i < want.losses().size(); i++) {
            float a = want.losses().get(i), b = got.losses().get(i);
            assertTrue(Math.abs(a - b) <= 1e-5 * Math.abs(a), what + ": loss of step " + (i + 1) + ": " + a + " vs " + b);
            double na = want.norms().get(i), nb = got.norms().get(i);
            assertTrue(Math.abs(na - nb) <= 1e-5 * na, what + ": gradient norm of step " + (i + 1) + ": " + na + " vs " + nb);
        }
        assertEquals(want.params().size(), got.params().size());
        double allNorm = 0, allDiff = 0;
        for (int t = 0; t < want.params().size(); t++) {
            float[] a = want.params().get(t), b = got.params().get(t);
            double norm = 0, diff = 0;
            for (int i = 0; i < a.length; i++) { norm += (double) a[i] * a[i]; diff += ((double) a[i] - b[i]) * ((double) a[i] - b[i]); }
            allNorm += norm;
            allDiff += diff;
            assertTrue(Math.sqrt(diff) <= 1e-4 * Math.sqrt(norm), what + ": parameter " + t + " differs by " + Math.sqrt(diff)
                    + " (norm " + Math.sqrt(norm) + ")");
        }
        assertTrue(Math.sqrt(allDiff) <= 1e-5 * Math.sqrt(allNorm), what + ": parameters differ by " + Math.sqrt(allDiff)
                + " (norm " + Math.sqrt(allNorm) + ")");
    }

    /** A run without evaluation: checkpoints every {@code saveEvery} steps, a line every {@code logEvery}. */
    static ParallelPretrain.Setup setup(java.util.function.Supplier<Gpt> model, List<Path> shards, boolean shuffle, long seed,
                                        Pretrainer.Options opt, boolean zero1, Path runDir, int saveEvery, Path resume,
                                        java.io.PrintStream log, int logEvery) {
        return new ParallelPretrain.Setup(model, shards, List.of(), shuffle, seed, opt, zero1, resume,
                new Pretrainer.Reporting(runDir, 0, 0, saveEvery, logEvery, false), log, null, null);
    }
}
