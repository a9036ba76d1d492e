package ai.wafer.model;

import ai.wafer.WaferException;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Streaming a mapped model's blocks changes what is in memory, never a result: forward, backward and cached decoding. */
class WeightStreamTest {
    private static final GptConfig CFG = GptConfig.of(4, 64, 4, 300, 32);

    @Test
    void streamedPassesEqualInMemoryOnes(@TempDir Path dir) {
        Checkpoint.writeRandom(CFG, 7, dir, SafeTensors.DType.BF16, 0);
        Gpt plain = Checkpoint.loadFrozen(dir), streamed = Checkpoint.loadFrozen(dir);
        long perLayer = 2L * (4 * 64 * 64 + 8 * 64 * 64); // c_attn, c_proj, c_fc, mlp.c_proj in bf16
        WeightStream s = WeightStream.attach(streamed, perLayer * 3 / 2);
        assertNotNull(s, "four layers' weights exceed a budget of one and a half");
        assertEquals(1, s.resident());
        assertNull(WeightStream.attach(Checkpoint.loadFrozen(dir), 10 * perLayer), "a model that fits is not streamed");

        // forward and backward (the LayerNorm gains train; the mapped matrices stay frozen, gradients flow through them)
        for (Gpt m : new Gpt[]{plain, streamed}) for (Parameter p : m.parameters()) if (!p.isMapped()) p.setTrainable(true);
        int B = 2, T = 16;
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < x.length; i++) { x[i] = (i * 37) % 300; y[i] = (i * 11 + 5) % 300; }
        for (int step = 0; step < 2; step++) { // twice: the second pass starts with blocks the first one paged out
            plain.zeroGrad();
            streamed.zeroGrad();
            assertEquals(plain.forward(x, y, B, T), streamed.forward(x, y, B, T));
            plain.backward();
            streamed.backward();
            for (Parameter p : plain.parameters())
                if (p.trainable()) assertArrayEquals(p.gradArray(), streamed.parameter(p.name).gradArray(), p.name);
        }

        // cached decoding: a prompt, then tokens one at a time
        float[] a = decode(plain, x), b = decode(streamed, x);
        assertArrayEquals(a, b);
    }

    @Test
    void refusesAPassTooSlowForTheDisk(@TempDir Path dir) {
        Checkpoint.writeRandom(CFG, 7, dir, SafeTensors.DType.BF16, 0);
        var e = assertThrows(WaferException.class, () -> WeightStream.attach(Checkpoint.loadFrozen(dir), 1, 1e-9));
        assertTrue(e.getMessage().contains("too slow"), e.getMessage());
    }

    private static float[] decode(Gpt m, int[] x) {
        KvCache[] cache = {new KvCache(CFG.nLayer(), CFG.nHead(), CFG.headSize(), CFG.nPositions())};
        Activations a = m.newGenerationActs(1, 8);
        float[] logits = new float[CFG.vocabSize()], all = new float[4 * CFG.vocabSize()];
        m.forwardCached(a, cache, java.util.Arrays.copyOf(x, 8), 1, 8, logits);
        for (int t = 0; t < 4; t++) {
            m.forwardCached(a, cache, new int[]{x[8 + t]}, 1, 1, logits);
            System.arraycopy(logits, 0, all, t * CFG.vocabSize(), CFG.vocabSize());
        }
        return all;
    }
}
