package ai.wafer.peft;

import ai.wafer.model.Parameter;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** LoRA with dropout: backward redraws forward's mask, so its gradients match finite differences of that same function. */
class LoraDropoutTest {
    @Test
    void gradientsWithDropout() {
        int N = 5, in = 7, out = 6, r = 3;
        Random rnd = new Random(3);
        // every forward gets mask seed 7, so it drops the same inputs: one fixed function for finite differences
        LoraLinear l = new LoraLinear("m", in, out, r, 6f, 0.4f, () -> 7L, new SplittableRandom(1), new LoraLinear.Scratch());
        for (Parameter p : new Parameter[] {l.loraA, l.loraB}) for (int i = 0; i < p.size(); i++) p.data[i] = (float) rnd.nextGaussian();
        float[] x = new float[N * in], R = new float[N * out], y = new float[N * out];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < R.length; i++) R[i] = (float) rnd.nextGaussian();
        java.util.function.DoubleSupplier L = () -> {
            java.util.Arrays.fill(y, 0f);
            l.forward(y, x, N);
            double s = 0;
            for (int i = 0; i < y.length; i++) s += (double) y[i] * R[i];
            return s;
        };
        L.getAsDouble();
        float[] dx = new float[x.length];
        l.backward(dx, R, x, N);
        int zeros = 0;
        for (float v : dx) if (v == 0f) zeros++;
        assertTrue(zeros > 0, "some inputs are dropped: their gradient is exactly zero");
        check("dx", x, dx, L);
        check("lora_A", l.loraA.data, l.loraA.grad(), L);
        check("lora_B", l.loraB.data, l.loraB.grad(), L);
    }

    private static void check(String what, float[] x, float[] g, java.util.function.DoubleSupplier L) {
        double h = 1e-2;
        for (int i = 0; i < x.length; i++) {
            float keep = x[i];
            x[i] = (float) (keep + h);
            double up = L.getAsDouble();
            x[i] = (float) (keep - h);
            double down = L.getAsDouble();
            x[i] = keep;
            double num = (up - down) / (2 * h);
            if (Math.abs(num - g[i]) > 1e-2 * Math.max(1, Math.abs(num))) fail(what + "[" + i + "]: analytic " + g[i] + " numeric " + num);
        }
    }
}
