package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.train.Pretrainer;
import ai.wafer.train.StepEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Activation recomputation under every parallel layout trains to the same bits as without: data parallelism (each
 * replica recomputes its own blocks), tensor parallelism (the ranks rerun a block's all-reduces together) and the 1F1B
 * pipeline (each micro-batch in flight has its own activations, so a stage's top block still holds its forward).
 */
class RecomputeParallelTest {
    @TempDir Path tmp;

    /** Four layers: two per pipeline stage, so every stage recomputes a block below its top one. */
    private static final GptConfig FOUR = GptConfig.of(4, 32, 4, 97, 64);

    private static Run train(Path shard, Pretrainer.Options o, Layout layout, boolean recompute) {
        List<Run> runs = ThreadCommunicator.run(layout.size(), Duration.ofSeconds(60), c -> {
            Layout.Groups g = layout.groups(c);
            Gpt m = Gpt.init(FOUR, SEED);
            m.setRecompute(recompute);
            try (TokenLoader loader = new TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
                boolean split = layout.tp() > 1 || layout.pp() > 1;
                ParallelTrainer pt = split ? new ParallelTrainer(layout, g, m, loader, o) : null;
                if (split) assertEquals(recompute, pt.model().recompute(), "the shard recomputes as its whole model says");
                StepEngine t = split ? pt : new DataParallelTrainer(g.dp(), m, loader, o, false, DataParallelTrainer.DEFAULT_BUCKET_BYTES);
                List<Pretrainer.StepResult> rs = new ArrayList<>();
                for (int s = 0; s < 2; s++) rs.add(t.trainStep());
                return snapshot(rs, (split ? pt.gather() : m).parameters());
            }
        });
        return runs.get(0);
    }

    @Test void everyLayoutTrainsToTheSameBits() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(2, 4, 16, 2);
        for (Layout l : List.of(new Layout(2, 1, 1), new Layout(1, 2, 1), new Layout(1, 1, 2), new Layout(2, 2, 2))) {
            Run kept = train(shard, o, l, false), recomputed = train(shard, o, l, true);
            assertEquals(kept.losses(), recomputed.losses(), l.toString());
            assertEquals(kept.norms(), recomputed.norms(), l.toString());
            for (int i = 0; i < kept.params().size(); i++) assertArrayEquals(kept.params().get(i), recomputed.params().get(i), l + " tensor " + i);
        }
    }
}
