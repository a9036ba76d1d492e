package ai.wafer.train;

import ai.wafer.data.TokenLoader;
import ai.wafer.io.TokenShard;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static ai.wafer.testutil.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** K micro-batches of B/K rows are the same optimisation as one batch of B rows (the loss is the mean over all tokens). */
class GradAccumTest {
    @TempDir Path tmp;

    private Gpt train(Path shard, int B, int K, float[] lossOut) {
        Gpt m = Gpt.init(GptConfig.of(2, 24, 2, 53, 32), 9);
        try (TokenLoader data = new TokenLoader(List.of(shard), B, 16, false, 0)) {
            var opt = new Pretrainer.Options(3, B, 16, K, new LrSchedule(LrSchedule.Kind.CONSTANT, 1e-2f, 0, 3, 0.1f),
                    AdamW.Hyper.defaults(), 1.0f);
            Pretrainer p = new Pretrainer(m, data, opt);
            for (int s = 0; s < 3; s++) lossOut[s] = p.trainStep().loss();
        }
        return m;
    }

    @Test
    void accumulationEqualsTheBigBatch() {
        int[] t = new int[2000];
        SplittableRandom r = new SplittableRandom(4);
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt(53);
        Path shard = tmp.resolve("s.bin");
        TokenShard.write(shard, t);
        float[] l1 = new float[3], l4 = new float[3];
        Gpt big = train(shard, 4, 1, l1), acc = train(shard, 1, 4, l4);
        for (int s = 0; s < 3; s++) assertEquals(l1[s], l4[s], 1e-5 * l1[s], "loss of step " + s);
        // the gradients of the last step, before clipping (AdamW's division makes parameters after
        // several steps sensitive to float summation order; the gradients themselves are not)
        for (Parameter p : big.parameters()) assertClose(p.name, p.gradArray(), acc.parameter(p.name).gradArray(), 1e-4);
    }
}
