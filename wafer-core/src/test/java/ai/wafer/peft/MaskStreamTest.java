package ai.wafer.peft;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The random-access mask stream is SplittableRandom's stream, element for element, so one-process masks did not change. */
class MaskStreamTest {
    @Test
    void uniformIsTheIthDoubleOfSplittableRandom() {
        for (long seed : new long[] {0, 1, -7, 0x123456789abcdefL, Long.MIN_VALUE}) {
            SplittableRandom r = new SplittableRandom(seed);
            for (int i = 0; i < 1000; i++) assertEquals(r.nextDouble(), LoraLinear.uniform(seed, i), "seed " + seed + " element " + i);
        }
    }
}
