package ai.wafer.train;

import ai.wafer.data.TokenLoader;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.TokenShard;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's Java API example, at a small size: it must compile, run, and learn. */
class ReadmeApiTest {
    @TempDir Path tmp;

    @Test
    void readmeLoopLearns() throws Exception {
        int[] toks = new int[4000];
        for (int i = 0; i < toks.length; i++) toks[i] = (i * 7) % 31; // a periodic sequence a model can learn
        TokenShard.write(tmp.resolve("train_000000.bin"), toks);
        Gpt model = Gpt.init(GptConfig.of(2, 32, 2, 31, 64), 1337);
        float first = Float.NaN, last = Float.NaN;
        try (TokenLoader data = new TokenLoader(TokenLoader.shards(tmp, "train"), 8, 32, true, 1337)) {
            AdamW opt = new AdamW(model.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
            LrSchedule lr = new LrSchedule(LrSchedule.Kind.COSINE, 3e-3f, 5, 60, 0.1f);
            int[] x = new int[8 * 32], y = new int[8 * 32];
            for (int step = 0; step < 60; step++) {
                data.nextBatch(x, y);
                model.zeroGrad();
                float loss = model.forward(x, y, 8, 32);
                model.backward();
                opt.step(lr.at(step), 1.0f);
                if (step == 0) first = loss;
                last = loss;
            }
        }
        Checkpoint.save(model, tmp.resolve("out"));
        assertTrue(last < 0.3 * first, "loss fell from " + first + " to " + last);
        assertTrue(List.of(tmp.resolve("out").toFile().list()).contains("model.safetensors"));
    }

    @Test
    void scheduleShapes() {
        LrSchedule cos = new LrSchedule(LrSchedule.Kind.COSINE, 1f, 10, 110, 0.1f);
        assertTrue(Math.abs(cos.at(0) - 0.1f) < 1e-6 && Math.abs(cos.at(9) - 1f) < 1e-6, "linear warmup to the peak");
        assertTrue(Math.abs(cos.at(109) - 0.1f) < 1e-6, "cosine ends at min_lr_ratio of the peak");
        assertTrue(Math.abs(cos.at(59) - 0.55f) < 0.01f, "halfway: the mean of peak and floor");
        LrSchedule lin = new LrSchedule(LrSchedule.Kind.LINEAR, 1f, 0, 101, 0.1f);
        assertTrue(Math.abs(lin.at(50) - 0.55f) < 1e-6 && Math.abs(lin.at(100) - 0.1f) < 1e-6);
        assertTrue(new LrSchedule(LrSchedule.Kind.CONSTANT, 2f, 0, 5, 0.1f).at(4) == 2f);
    }
}
