package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayoutTest {
    @TempDir Path tmp;

    @Test void parsesAndNamesBadInput() {
        assertEquals(new Layout(2, 2, 1), Layout.parse("dp=2,tp=2"));
        assertEquals(new Layout(1, 1, 4), Layout.parse(" pp=4 "));
        assertEquals(8, Layout.parse("tp=2,dp=2,pp=2").size());
        assertTrue(assertThrows(WaferException.class, () -> Layout.parse("dp=2,xp=2")).getMessage().contains("unknown degree 'xp'"));
        assertTrue(assertThrows(WaferException.class, () -> Layout.parse("dp=two")).getMessage().contains("not a whole number"));
        assertTrue(assertThrows(WaferException.class, () -> Layout.parse("dp=0")).getMessage().contains(">= 1"));
    }

    @Test void ranksAreLaidOutTensorInnermost() {
        Layout l = new Layout(2, 2, 2);
        // rank = (d*pp + s)*tp + t
        assertEquals(1, l.tpRank(5));
        assertEquals(0, l.ppRank(5));
        assertEquals(1, l.dpRank(5));
        List<int[]> got = ThreadCommunicator.run(8, Duration.ofSeconds(30), c -> {
            Layout.Groups g = l.groups(c);
            return new int[]{g.dp().rank(), g.dp().size(), g.tp().rank(), g.tp().size(), g.pp().rank(), g.pp().size()};
        });
        for (int r = 0; r < 8; r++)
            assertArrayEquals(new int[]{l.dpRank(r), 2, l.tpRank(r), 2, l.ppRank(r), 2}, got.get(r), "rank " + r);
        assertTrue(assertThrows(WaferException.class, () -> ThreadCommunicator.run(1, Duration.ofSeconds(5), c -> l.groups(c)))
                .getMessage().contains("needs 8 ranks"));
    }

    @Test void entryPointTrainsLogsAndSaves() throws Exception {
        Path shard = tokens(tmp, 3000);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        var o = options(2, 4, 16, 1);
        ParallelPretrain.Result r = ParallelPretrain.run(Layout.parse("dp=2"), ParallelPretrain.Engine.THREADS,
                ParallelFixtures.setup(() -> Gpt.init(CFG, SEED), List.of(shard), false, 0, o, true, tmp.resolve("run"),
                        0, null, new PrintStream(out, true), 1));
        assertEquals(2, r.steps().size());
        assertTrue(r.bytesPerStep() > 0);
        assertTrue(Files.isRegularFile(r.lastCheckpoint().resolve("optimizer.safetensors")));
        String log = out.toString();
        assertTrue(log.contains("parallel dp=2,tp=1,pp=1: 2 ranks, 2 rows per rank, ZeRO-1 on") && log.contains("step     2/2"), log);
        assertSameRun(reference(shard, o, 2), new Run(r.steps().stream().map(s -> s.loss()).toList(),
                r.steps().stream().map(s -> s.gradNorm()).toList(), snapshotOf(r.lastCheckpoint())), "entry point");
    }

    @Test void entryPointRunsPipelineLayoutsAndPrintsTheBubble() {
        Path shard = tokens(tmp, 3000);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        var o = options(2, 4, 16, 4);
        ParallelPretrain.Result r = ParallelPretrain.run(Layout.parse("tp=2,pp=2"), ParallelPretrain.Engine.THREADS,
                ParallelFixtures.setup(() -> Gpt.init(CFG, SEED), List.of(shard), false, 0, o, false, null,
                        0, null, new PrintStream(out, true), 1));
        assertEquals(2, r.steps().size());
        assertTrue(out.toString().contains("pipeline bubble (1F1B): 20.0% of each step idle"), out.toString());
        assertEquals(reference(shard, o, 2).losses().get(1), r.steps().get(1).loss(), 1e-5 * r.steps().get(1).loss());
    }

    private static List<float[]> snapshotOf(Path ck) {
        Gpt m = ai.wafer.io.Checkpoint.load(ck);
        return m.parameters().stream().map(p -> p.array()).toList();
    }
}
