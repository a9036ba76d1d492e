package ai.wafer.model;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * zeroGrad is lazy (the first weight-gradient product of a step writes instead of adding): whatever way a gradient
 * is reached after it, it counts zero, and a second step's gradients equal a fresh model's, not the sum of two.
 */
class ZeroGradTest {
    @Test
    void aPendingZeroIsZeroToEveryReader() {
        Parameter p = new Parameter("w", 3, 4);
        p.setTrainable(true);
        Arrays.fill(p.grad(), 7f);
        p.zeroGrad();
        assertArrayEquals(new float[12], p.gradArray(), "read through grad()");
        Arrays.fill(p.grad(), 7f);
        p.zeroGrad();
        assertTrue(p.claimZeroGrad(), "the first writer takes the pending zero over");
        assertFalse(p.claimZeroGrad(), "once");
        assertEquals(7f, p.grad()[0], "a claimed gradient is the claimer's to write: not zeroed behind it");

        Parameter a = new Parameter("a", 5), b = new Parameter("b", 2, 2);
        a.setTrainable(true);
        b.setTrainable(true);
        FlatStore s = FlatStore.of(java.util.List.of(a, b));
        Arrays.fill(s.grads, 3f);
        a.zeroGrad();
        b.zeroGrad();
        s.materializeZeros(); // what the collectives do before reading the flat gradients
        for (float g : s.grads) assertEquals(0f, g, "flat gradients after materializeZeros");
    }

    @Test
    void secondStepGradientsAreAFreshModelsNotTheirSum() {
        GptConfig cfg = GptConfig.of(2, 32, 4, 53, 16);
        Gpt m = Gpt.init(cfg, 3), fresh = Gpt.init(cfg, 3);
        FlatStore.of(m.parameters());
        FlatStore.of(fresh.parameters());
        int B = 2, T = 16;
        int[] x = new int[B * T], y = new int[B * T], x2 = new int[B * T];
        for (int i = 0; i < B * T; i++) { x[i] = i * 7 % 53; y[i] = (i * 7 + 1) % 53; x2[i] = (i * 11 + 5) % 53; }
        m.zeroGrad();
        m.forward(x, y, B, T);
        m.backward();
        m.zeroGrad(); // a new step on other tokens
        m.forward(x2, y, B, T);
        m.backward();
        fresh.zeroGrad();
        fresh.forward(x2, y, B, T);
        fresh.backward();
        for (int i = 0; i < m.parameters().size(); i++)
            assertArrayEquals(fresh.parameters().get(i).gradArray(), m.parameters().get(i).gradArray(), m.parameters().get(i).name);
    }
}
