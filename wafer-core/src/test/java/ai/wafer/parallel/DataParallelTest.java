package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.train.Pretrainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataParallelTest {
    @TempDir Path tmp;

    /** Trains on p thread ranks; checks every replica ends identical; returns rank 0's run. */
    private Run dataParallel(Path shard, Pretrainer.Options o, int p, boolean zero, long bucketBytes, int steps,
                             Path resumeFrom, Path saveTo) {
        List<Run> runs = ThreadCommunicator.run(p, Duration.ofSeconds(60), c -> {
            Gpt m = Gpt.init(CFG, SEED);
            try (TokenLoader loader = new TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
                DataParallelTrainer t = new DataParallelTrainer(c, m, loader, o, zero, bucketBytes);
                if (resumeFrom != null) t.resume(resumeFrom);
                List<Pretrainer.StepResult> rs = new ArrayList<>();
                for (int s = 0; s < steps; s++) {
                    rs.add(t.trainStep());
                    if (p > 1) assertTrue(t.lastStepBytes() > 0);
                }
                if (saveTo != null) t.save(saveTo);
                return snapshot(rs, m.parameters());
            }
        });
        for (Run r : runs) {
            assertEquals(runs.get(0).losses(), r.losses());
            assertEquals(runs.get(0).norms(), r.norms());
            for (int i = 0; i < r.params().size(); i++) assertArrayEquals(runs.get(0).params().get(i), r.params().get(i));
        }
        return runs.get(0);
    }

    @Test void twoRanksEqualOneProcessOnTheSameGlobalBatch() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 1);
        assertSameRun(reference(shard, o, 3), dataParallel(shard, o, 2, false, DataParallelTrainer.DEFAULT_BUCKET_BYTES, 3, null, null), "dp=2");
    }

    @Test void zero1WithManySmallBucketsAndAccumulationOnFourRanks() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(3, 4, 16, 2);
        Run want = reference(shard, o, 3);
        assertSameRun(want, dataParallel(shard, o, 4, true, 4096, 3, null, null), "dp=4 zero1");
        assertSameRun(want, dataParallel(shard, o, 2, true, DataParallelTrainer.DEFAULT_BUCKET_BYTES, 3, null, null), "dp=2 zero1 one bucket");
    }

    @Test void zero1ShardsTheMomentsAndCommunicatesLikeAnAllReduce() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(1, 4, 16, 1);
        long[][] got = new long[2][];
        for (int z = 0; z < 2; z++) {
            boolean zero = z == 1;
            List<long[]> r = ThreadCommunicator.run(2, Duration.ofSeconds(60), c -> {
                Gpt m = Gpt.init(CFG, SEED);
                try (TokenLoader loader = new TokenLoader(List.of(shard), 4, 16, false, 0)) {
                    DataParallelTrainer t = new DataParallelTrainer(c, m, loader, o, zero, 1 << 20);
                    t.trainStep();
                    return new long[]{t.optimizerStateFloats(), t.lastStepBytes(), m.parameterCount()};
                }
            });
            got[z] = r.get(0);
        }
        long n = got[0][2];
        assertEquals(2 * n, got[0][0]);
        assertTrue(got[1][0] <= n + 2 && got[1][0] >= n, Arrays.toString(got[1])); // half of 2n, plus padding
        // all-reduce of n floats on 2 ranks sends n*4 bytes; reduce-scatter + all-gather the same (+ padding, + the statistics)
        assertTrue(Math.abs(got[0][1] - 4 * n) < 64 && Math.abs(got[1][1] - 4 * n) < 64, Arrays.toString(got[0]) + " " + Arrays.toString(got[1]));
    }

    @Test void checkpointsMoveBetweenLayouts() {
        Path shard = tokens(tmp, 3000);
        Pretrainer.Options o = options(4, 4, 16, 1);
        Run want = reference(shard, o, 4);
        // 2 steps on dp=2 with ZeRO, saved; 2 more on dp=4, no ZeRO
        Path run = tmp.resolve("run");
        Run first = dataParallel(shard, o, 2, true, 4096, 2, null, run);
        Path ck = ai.wafer.train.TrainCheckpoint.resolve(run);
        Run second = dataParallel(shard, o, 4, false, 4096, 2, ck, null);
        assertSameRun(want, join(first, second), "dp=2 zero1 then dp=4");
        // and the single process continues the same checkpoint
        Gpt m = Gpt.init(CFG, 99);
        try (TokenLoader loader = new TokenLoader(List.of(shard), 4, 16, false, 0)) {
            Pretrainer p = new Pretrainer(m, loader, o);
            p.resume(ck);
            Run rest = snapshot(List.of(p.trainStep(), p.trainStep()), m.parameters());
            assertSameRun(want, join(first, rest), "dp=2 zero1 then one process");
        }
    }
}
