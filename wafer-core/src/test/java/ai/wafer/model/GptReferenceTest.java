package ai.wafer.model;

import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.io.TokenShard;
import ai.wafer.train.AdamW;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static ai.wafer.testutil.Fixtures.assertClose;
import static ai.wafer.testutil.Fixtures.fixture;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The model against PyTorch (../shared/tools/torch_ref.py, float64): logits and every gradient of
 * the first batch, the loss of three steps, and the parameters after three AdamW steps. The fixtures
 * it made are in wafer-core/src/test/resources/fixtures (its README says how); gpt-mup is a µP (BTLM) model made by
 * tools/mup_ref.py, whose float64 reference applies BTLM's scales and Cerebras' µP learning rates.
 */
class GptReferenceTest {

    /** Batch k row b of the --no-shuffle contract: T+1 tokens from ((k*B + b)*T) mod (N-T-1). */
    static void batch(int[] tokens, int k, int B, int T, int[] x, int[] y) {
        int N = tokens.length;
        for (int b = 0; b < B; b++) {
            int s = (int) (((long) (k * B + b) * T) % (N - T - 1));
            for (int t = 0; t < T; t++) {
                x[b * T + t] = tokens[s + t];
                y[b * T + t] = tokens[s + t + 1];
            }
        }
    }

    /**
     * Logits, gradients and losses are held to 1e-4 (losses 1e-5). The parameters after three AdamW steps
     * are held to 1e-4 plus, element by element, what float32 gradient noise alone can move them
     * ({@link #noiseAllowance}). AdamW divides each gradient by its own running size, so an element whose
     * gradient is a near-cancelled sum takes a step of up to lr whose size and sign are rounding noise:
     * gpt-odd's h.1.attn.c_attn.weight[3082] (row 28, a k weight of head 1) has a step-1 gradient of 8.0e-9,
     * the 1e-5 residue of 21 terms summing 8.2e-4 in absolute value, in a tensor whose gradients reach
     * 2.1e-2; the k biases' exact gradient is 0. PyTorch's own float32 run misses its float64 reference by
     * 4.3e-4 (relative) on that weight and 1.4e-2 on gpt-odd's k biases, and our result there moves with
     * the CPU's vector width and the GEMM used. tools/adamw_precision.py measures this and shows PyTorch's
     * float32 run passing this check (at most 0.094 of its bound). The allowance exceeds 1e-4 on 2-7% of
     * the elements (the test prints how many and the worst error / bound); an lr off by 0.2% in the last
     * step alone fails every fixture.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"gpt-tiny, 2, 8, 1e-4", "gpt-odd, 3, 7, 1e-4", "gpt-untied, 2, 8, 1e-4", "gpt-buffers, 2, 8, 1e-4", "gpt-mup, 2, 8, 1e-4"})
    void matchesPyTorch(String name, int B, int T, double paramTol) throws Exception {
        Path dir = fixture(name);
        Path exp = dir.resolve("expected");
        Gpt model = Checkpoint.load(dir);
        int[] tokens;
        try (TokenShard s = TokenShard.open(dir.resolve("tokens.bin"))) { tokens = s.read(0, (int) s.size()); }
        int[] x = new int[B * T], y = new int[B * T];

        // logits of the first batch
        batch(tokens, 0, B, T, x, y);
        model.forward(x, null, B, T);
        float[] logits = model.activations().logits;
        float[] want = ai.wafer.testutil.Fixtures.tensor(exp.resolve("step1_logits.safetensors"), "logits");
        assertClose(name + " logits", want, java.util.Arrays.copyOf(logits, want.length), 1e-4);

        double[] losses = new ObjectMapper().readTree(exp.resolve("losses.json").toFile()).get("losses")
                .valueStream().mapToDouble(n -> n.asDouble()).toArray();
        AdamW opt = new AdamW(model.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
        java.util.List<Parameter> params = model.parameters();
        float[][] initial = new float[params.size()][];
        float[][][] stepGrads = new float[params.size()][losses.length][];
        double[] clipScale = new double[losses.length];
        for (int i = 0; i < params.size(); i++) initial[i] = params.get(i).array().clone();
        double worstUlps = 0;
        try (SafeTensors.Reader grads = SafeTensors.open(exp.resolve("step1_grads.safetensors"))) {
            for (int step = 0; step < losses.length; step++) {
                batch(tokens, step, B, T, x, y);
                model.zeroGrad();
                float loss = model.forward(x, y, B, T);
                assertEquals(losses[step], loss, 1e-5 * Math.abs(losses[step]), name + " loss of step " + (step + 1));
                model.backward();
                if (step == 0) {
                    for (Parameter p : params) {
                        float[] ref = grads.floats(p.name);
                        assertClose(name + " grad " + p.name, ref, p.grad(), 1e-4);
                        // noiseAllowance's premise: our gradient noise is within GRAD_NOISE ulps of the largest gradient
                        double maxRef = 0, err = 0;
                        for (int j = 0; j < ref.length; j++) {
                            maxRef = Math.max(maxRef, Math.abs(ref[j]));
                            err = Math.max(err, Math.abs((double) p.grad()[j] - ref[j]));
                        }
                        worstUlps = Math.max(worstUlps, err / (ULP * maxRef));
                        assertTrue(err <= GRAD_NOISE * ULP * maxRef, name + " grad " + p.name + ": error " + err
                                + " above the float32 noise bound " + GRAD_NOISE * ULP * maxRef);
                    }
                }
                for (int i = 0; i < params.size(); i++) stepGrads[i][step] = params.get(i).gradArray().clone();
                clipScale[step] = Math.min(1.0, CLIP / (opt.step(LR, CLIP) + 1e-6));
            }
        }
        System.out.printf("%s: worst step-1 gradient error %.2f ulps of the tensor's largest gradient%n", name, worstUlps);
        int noisy = 0, total = 0;
        double[] worst = {0};
        try (SafeTensors.Reader fin = SafeTensors.open(exp.resolve("final_params.safetensors"))) {
            for (int i = 0; i < params.size(); i++) {
                Parameter p = params.get(i);
                float[] fixed = fin.floats(p.name);
                double[] allow = noiseAllowance(initial[i], stepGrads[i], clipScale, p.decays(), LR * p.lrScale);
                noisy += assertCloseUpTo(name + " param " + p.name + " after " + losses.length + " steps",
                        fixed, p.data, paramTol, allow, worst);
                total += fixed.length;
            }
        }
        System.out.printf("%s: %d of %d parameters have a float32-noise allowance above the tolerance; worst error %.3f of its bound%n",
                name, noisy, total, worst[0]);
    }

    static final float LR = 1e-3f, CLIP = 1.0f;
    static final double BETA1 = 0.9, BETA2 = 0.95, EPS = 1e-8, WD = 0.1;
    static final double ULP = Math.ulp(1f);
    /**
     * Float32 gradient noise, in ulps of the tensor's largest gradient: PyTorch's float32 run misses its
     * float64 gradients by at most 52.6 such ulps (gpt-buffers, step 2, h.0.mlp.c_proj.weight; 40.4 on
     * gpt-odd, 7.3 on gpt-tiny, 5.1 on gpt-untied; every tensor, all three steps; tools/adamw_precision.py
     * on the CI machine, an AVX-512 Intel Xeon, PyTorch 1.13). Our own step-1 gradients are asserted to be
     * within it (they measure at most 5.7).
     */
    static final double GRAD_NOISE = 64;

    /**
     * How far float32 gradient noise alone can move each element after the steps, by re-running AdamW
     * (PyTorch's formula, in double) on our own gradients with one step's gradient pushed by +-delta, delta =
     * GRAD_NOISE ulps of that step's largest gradient in the tensor, and summing the largest moves over the
     * steps. A gradient of exactly zero (a token or position no batch used) involves no arithmetic and is not
     * pushed. The move falls as delta * eps / g^2 once |g| is well above delta: it matters only for gradients
     * that are near-cancelled sums.
     */
    static double[] noiseAllowance(float[] w0, float[][] g, double[] scale, boolean decays, double lr) {
        int steps = g.length;
        double[] delta = new double[steps];
        for (int s = 0; s < steps; s++) {
            double max = 0;
            for (float v : g[s]) max = Math.max(max, Math.abs(v));
            delta[s] = GRAD_NOISE * ULP * max;
        }
        double[] allow = new double[w0.length];
        double[] gi = new double[steps];
        for (int j = 0; j < w0.length; j++) {
            for (int s = 0; s < steps; s++) gi[s] = g[s][j];
            double base = adamw(w0[j], gi, scale, decays, lr), sum = 0;
            for (int s = 0; s < steps; s++) {
                if (gi[s] == 0) continue;
                double keep = gi[s];
                gi[s] = keep + delta[s];
                double up = Math.abs(adamw(w0[j], gi, scale, decays, lr) - base);
                gi[s] = keep - delta[s];
                double down = Math.abs(adamw(w0[j], gi, scale, decays, lr) - base);
                gi[s] = keep;
                sum += Math.max(up, down);
            }
            allow[j] = sum;
        }
        return allow;
    }

    /** One element through torch_ref.py's AdamW at learning rate lr: clipped gradients g*scale, bias correction, decoupled decay. */
    static double adamw(double w, double[] g, double[] scale, boolean decays, double lr) {
        double m = 0, v = 0;
        for (int s = 0; s < g.length; s++) {
            double gs = g[s] * scale[s];
            m = BETA1 * m + (1 - BETA1) * gs;
            v = BETA2 * v + (1 - BETA2) * gs * gs;
            double mh = m / (1 - Math.pow(BETA1, s + 1)), vh = v / (1 - Math.pow(BETA2, s + 1));
            w = w * (1 - lr * (decays ? WD : 0)) - lr * mh / (Math.sqrt(vh) + EPS);
        }
        return w;
    }

    /**
     * {@link ai.wafer.testutil.Fixtures#assertClose}'s check, |actual - expected| <= rtol * max(|expected|,
     * 1% of the largest |expected|), loosened element by element by {@code allow}; returns how many elements
     * the allowance loosened beyond the plain tolerance, and raises {@code worst[0]} to the largest error / bound.
     */
    static int assertCloseUpTo(String what, float[] expected, float[] actual, double rtol, double[] allow, double[] worst) {
        double maxAbs = 0;
        for (float e : expected) maxAbs = Math.max(maxAbs, Math.abs(e));
        double floor = 0.01 * maxAbs + 1e-30;
        int loosened = 0;
        for (int i = 0; i < expected.length; i++) {
            double tol = rtol * Math.max(Math.abs(expected[i]), floor);
            if (allow[i] > tol) loosened++;
            double err = Math.abs((double) actual[i] - expected[i]);
            worst[0] = Math.max(worst[0], err / (tol + allow[i]));
            if (!(err <= tol + allow[i]))
                fail(what + ": error " + err + " > " + tol + " (relative " + rtol + ") + " + allow[i]
                        + " (float32 noise) at " + i + " (expected " + expected[i] + ", got " + actual[i] + ")");
        }
        return loosened;
    }
}
