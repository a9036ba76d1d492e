package ai.wafer.train;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.io.TokenShard;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Which checkpoint --resume takes, and how many a run keeps (--keep-checkpoints). */
class CheckpointRetentionTest {
    @TempDir Path tmp;

    private void fake(Path run, String name, boolean complete) throws Exception {
        Path d = Files.createDirectories(run.resolve("checkpoints").resolve(name));
        if (complete) Files.writeString(d.resolve("state.json"), "{}");
    }

    private List<String> left(Path run) throws Exception {
        try (Stream<Path> s = Files.list(run.resolve("checkpoints"))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void resumeTakesTheHighestStepNotTheLastInTextOrder() throws Exception {
        Path run = tmp.resolve("run");
        fake(run, "step-999999", true);
        fake(run, "step-1000000", true);
        fake(run, "step-1000001", false); // being written when the run died: not a checkpoint
        fake(run, "step-000002.tmp", true);
        assertEquals(run.resolve("checkpoints/step-1000000"), TrainCheckpoint.resolve(run));
    }

    @Test
    void pruneKeepsTheNewestCompleteCheckpoints() throws Exception {
        Path run = tmp.resolve("run");
        for (String s : List.of("step-000005", "step-000010", "step-000999", "step-001000")) fake(run, s, true);
        fake(run, "step-001001", false);
        TrainCheckpoint.prune(run, 2);
        assertEquals(List.of("step-000999", "step-001000", "step-001001"), left(run));
        TrainCheckpoint.prune(run, 0); // 0 keeps all
        assertEquals(3, left(run).size());
    }

    @Test
    void aRunWithSaveEveryOneKeepsOnlyTheNewest() throws Exception {
        int[] t = new int[3000];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < t.length; i++) t[i] = r.nextInt(41);
        Path shard = tmp.resolve("s.bin"), run = tmp.resolve("run");
        TokenShard.write(shard, t);
        Gpt m = Gpt.init(GptConfig.of(1, 16, 2, 41, 16), 1);
        var opt = new Pretrainer.Options(7, 2, 16, 1, new LrSchedule(LrSchedule.Kind.CONSTANT, 1e-3f, 0, 7, 0.1f), AdamW.Hyper.defaults(), 1f);
        try (TokenLoader data = new TokenLoader(List.of(shard), 2, 16, false, 0)) {
            Pretrainer.run(new Pretrainer(m, data, opt), null, new Pretrainer.Reporting(run, 0, 0, 1, 0, false, 2), null, new Pretrainer.Control());
        }
        // the last step is a checkpoint too; the newest two remain
        assertEquals(List.of("step-000006", "step-000007"), left(run));
        assertThrows(WaferException.class, () -> new Pretrainer.Reporting(run, 0, 0, 1, 0, false, -1));
    }
}
