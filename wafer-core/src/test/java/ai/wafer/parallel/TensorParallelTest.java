package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.train.Pretrainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TensorParallelTest {
    @TempDir Path tmp;

    /** Trains on the layout with thread ranks and returns rank 0's run with the gathered model. */
    static Run train(Path shard, Pretrainer.Options o, Layout layout, int steps) { return train(CFG, shard, o, layout, steps); }

    static Run train(ai.wafer.model.GptConfig cfg, Path shard, Pretrainer.Options o, Layout layout, int steps) {
        List<Run> runs = ThreadCommunicator.run(layout.size(), Duration.ofSeconds(60), c -> {
            Layout.Groups g = layout.groups(c);
            try (TokenLoader loader = new TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
                ParallelTrainer t = new ParallelTrainer(layout, g, Gpt.init(cfg, SEED), loader, o);
                List<Pretrainer.StepResult> rs = new ArrayList<>();
                for (int s = 0; s < steps; s++) rs.add(t.trainStep());
                return snapshot(rs, t.gather().parameters());
            }
        });
        for (Run r : runs) assertEquals(runs.get(0).losses(), r.losses());
        return runs.get(0);
    }

    @Test void oneShardIsTheModel() {
        // tp=1: the same kernels in the same order as Gpt, so the forward loss agrees to rounding
        Gpt full = Gpt.init(CFG, SEED);
        int[] x = new int[32], y = new int[32];
        for (int i = 0; i < 32; i++) { x[i] = (i * 7) % 97; y[i] = (i * 5 + 1) % 97; }
        float want = full.forward(x, y, 2, 16);
        float got = ThreadCommunicator.run(1, Duration.ofSeconds(10), c -> {
            Gpt m = Gpt.shard(full, c, 0, CFG.nLayer());
            return m.forward(m.newActs(2, 16), x, null, y);
        }).get(0);
        assertEquals(want, got, 1e-5 * want);
    }

    @Test void aWholeShardComputesExactlyWhatTheModelDoes() {
        // tp=1, every layer: the same class on the same path, so loss and gradients agree bit for bit
        Gpt full = Gpt.init(CFG, SEED), shard = Gpt.shard(full, null, 0, CFG.nLayer());
        int[] x = new int[32], y = new int[32];
        for (int i = 0; i < 32; i++) { x[i] = (i * 7) % 97; y[i] = i % 6 == 0 ? -100 : (i * 5 + 1) % 97; }
        var acts = shard.newActs(2, 16);
        assertEquals(full.forward(x, y, 2, 16), shard.forward(acts, x, null, y));
        full.backward(1f / 32);
        shard.backward(acts, null, 1f / 32);
        for (int i = 0; i < full.parameters().size(); i++)
            org.junit.jupiter.api.Assertions.assertArrayEquals(full.parameters().get(i).gradArray(), shard.parameters().get(i).gradArray(),
                    full.parameters().get(i).name);
    }

    @Test void aShardRefusesHooksAndLeftPadding() {
        Gpt full = Gpt.init(CFG, SEED);
        List<String> msgs = ThreadCommunicator.run(2, Duration.ofSeconds(10), c -> {
            Gpt m = Gpt.shard(full, c, 0, CFG.nLayer());
            String hooks = org.junit.jupiter.api.Assertions.assertThrows(ai.wafer.WaferException.class, () -> m.hooks(0)).getMessage();
            String pad = org.junit.jupiter.api.Assertions.assertThrows(ai.wafer.WaferException.class,
                    () -> m.forward(new int[8], null, new int[]{1, 0}, 2, 4)).getMessage();
            return hooks + " | " + pad;
        });
        assertTrue(msgs.get(1).contains("fine-tuning hooks needs the whole model") && msgs.get(1).contains("left padding needs the whole model")
                && msgs.get(1).contains("tensor rank 1 of 2"), msgs.get(1));
    }

    @Test void shardsGatherBackToTheModel() {
        Gpt full = Gpt.init(CFG, SEED);
        Gpt back = ThreadCommunicator.run(4, Duration.ofSeconds(10), c -> {
            Gpt g = new Gpt(CFG);
            Gpt.shard(full, c, 0, CFG.nLayer()).gather(g, null);
            return g;
        }).get(3);
        for (int i = 0; i < full.parameters().size(); i++)
            org.junit.jupiter.api.Assertions.assertArrayEquals(full.parameters().get(i).array(), back.parameters().get(i).array(),
                    full.parameters().get(i).name);
    }

    @Test void tensorParallelEqualsOneProcess() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 2);
        Run want = reference(shard, o, 3);
        assertSameRun(want, train(shard, o, Layout.parse("tp=2"), 3), "tp=2");
        assertSameRun(want, train(shard, o, Layout.parse("tp=4"), 3), "tp=4 (vocabulary 97 split unevenly)");
    }

    @Test void dataAndTensorParallelTogether() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 1);
        assertSameRun(reference(shard, o, 3), train(shard, o, Layout.parse("dp=2,tp=2"), 3), "dp=2,tp=2");
    }

    @Test void pipelineStagesWith1F1BEqualOneProcess() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 4);
        Run want = reference(shard, o, 3);
        assertSameRun(want, train(shard, o, Layout.parse("pp=2"), 3), "pp=2, 4 micro-batches");
        assertSameRun(want, train(shard, o, Layout.parse("dp=2,pp=2"), 3), "dp=2,pp=2");
        Pretrainer.Options one = options(3, 4, 16, 1);
        assertSameRun(reference(shard, one, 3), train(shard, one, Layout.parse("tp=2,pp=2"), 3), "tp=2,pp=2, 1 micro-batch");
    }

    /** µP's factors (embeddings, scores, vocabulary-split logits, learning rates) on tensor and pipeline shards. */
    @Test void mupOnShardsEqualsOneProcess() {
        var mup = CFG.withMup(new ai.wafer.model.MuP(3, 1.5, 0.5, true));
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 1);
        Run want = reference(mup, shard, o, 3);
        assertTrue(Math.abs(want.losses().get(0) - reference(shard, o, 1).losses().get(0)) > 1e-3, "µP changes the loss");
        assertSameRun(want, train(mup, shard, o, Layout.parse("tp=2,pp=2"), 3), "µP tp=2,pp=2");
    }

    @Test void predictedTensorParallelBytesEqualWhatARunSends() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(1, 4, 16, 2);
        Layout l = Layout.parse("dp=2,tp=2");
        long measured = ThreadCommunicator.run(4, Duration.ofSeconds(60), c -> {
            Layout.Groups g = l.groups(c);
            try (TokenLoader loader = new TokenLoader(List.of(shard), 4, 16, false, 0)) {
                ParallelTrainer t = new ParallelTrainer(l, g, Gpt.init(CFG, SEED), loader, o);
                t.trainStep();
                return t.lastStepBytes();
            }
        }).get(1); // tensor rank 1 holds 49 of the 97 vocabulary rows, as the plan assumes
        Plan.Stage s = Plan.of(CFG, l, 4, 16, 2, false, 1).worst();
        // the run also all-reduces its squared gradient norm over tp (8 bytes), which the plan leaves out
        assertEquals(s.bytesPerStep() + 8, measured, s.toString());
    }
}
