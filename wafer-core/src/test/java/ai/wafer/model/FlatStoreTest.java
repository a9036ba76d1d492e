package ai.wafer.model;

import ai.wafer.peft.Method;
import ai.wafer.peft.Peft;
import ai.wafer.train.AdamW;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parameters bound to a {@link FlatStore} (slices at offsets, several padded buckets) train bit for bit as parameters
 * that own their arrays: every kernel that reads a weight or writes a gradient honours the offset.
 */
class FlatStoreTest {
    private static final GptConfig CFG = GptConfig.of(2, 24, 2, 53, 32);

    private static int[] tokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(CFG.vocabSize());
        return t;
    }

    /** Two steps of forward, backward and AdamW; returns every parameter's values and gradient after them. */
    private static List<float[]> train(Gpt m, List<Parameter> params) {
        AdamW opt = new AdamW(params, AdamW.Hyper.defaults());
        for (int step = 0; step < 2; step++) {
            m.zeroGrad();
            m.forward(tokens(3 * 16, step), tokens(3 * 16, 10 + step), 3, 16);
            m.backward(1f / (3 * 16));
            opt.step(1e-2f, 1f);
        }
        List<float[]> out = new ArrayList<>();
        for (Parameter p : params) { out.add(p.array()); out.add(p.trainable() ? p.gradArray() : new float[0]); }
        return out;
    }

    @Test
    void aBoundModelTrainsExactlyAsAnUnboundOne() {
        Gpt plain = Gpt.init(CFG, 5);
        List<float[]> own = train(plain, plain.parameters());
        Gpt bound = Gpt.init(CFG, 5);
        FlatStore store = new FlatStore(bound.parameters(), 4 * 1500, 3); // small buckets: many offsets, padding
        assertTrue(store.buckets.size() > 3, "several buckets");
        List<float[]> flat = train(bound, bound.parameters());
        for (int i = 0; i < own.size(); i++)
            assertArrayEquals(own.get(i), flat.get(i), bound.parameters().get(i / 2).name + (i % 2 == 0 ? " values" : " gradient"));
    }

    @Test
    void peftMethodsHonourTheOffsets() {
        for (Peft.Kind kind : new Peft.Kind[] {Peft.Kind.LORA, Peft.Kind.IA3, Peft.Kind.PREFIX, Peft.Kind.ADAPTER, Peft.Kind.BITFIT}) {
            List<float[]> results = new ArrayList<>();
            for (boolean bind : new boolean[] {false, true}) {
                Gpt m = Gpt.init(CFG, 5);
                Method method = Peft.apply(m, Peft.Spec.of(kind), 11);
                List<Parameter> params = new ArrayList<>(m.parameters());
                if (method != null) params.addAll(method.tensors().values());
                if (bind) new FlatStore(params, 4 * 200, 2);
                results.addAll(train(m, params));
            }
            int half = results.size() / 2;
            for (int i = 0; i < half; i++) assertArrayEquals(results.get(i), results.get(half + i), kind + " tensor " + i);
        }
    }

    @Test
    void bucketsArePaddedChunksAndTheParametersAliasTheBuffers() {
        Gpt m = Gpt.init(CFG, 5);
        FlatStore s = new FlatStore(m.parameters(), 4 * 3000, 4);
        long n = 0;
        int end = 0;
        for (FlatStore.Bucket b : s.buckets) {
            assertEquals(end, b.from(), "buckets are contiguous");
            assertTrue(b.chunk() * 4 >= b.length() && (b.chunk() - 1) * 4 < b.length(), "padded to a multiple of p, no more");
            end = b.from() + 4 * b.chunk();
            for (int q = b.first(); q < b.end(); q++) n += s.params.get(q).size();
        }
        assertEquals(s.values.length, end);
        assertEquals(m.parameters().stream().mapToLong(Parameter::size).sum(), n);
        assertEquals(n, s.elements);
        Parameter last = m.parameters().getLast(); // backward's first: the store's first parameter
        assertSame(last, s.params.getFirst());
        s.values[s.at[0] + 3] = 42f;
        assertEquals(42f, last.weights().get(3));
        assertSame(s.grads, last.grad());
    }
}
