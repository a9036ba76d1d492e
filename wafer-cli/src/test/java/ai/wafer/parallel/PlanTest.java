package ai.wafer.parallel;

import ai.wafer.cli.Wafer;
import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PlanTest {
    @TempDir Path tmp;

    /** L=2, C=4, H=2, V=10, n_positions=8, F=16, worked out by hand in the comments. */
    private static final GptConfig SMALL = GptConfig.of(2, 4, 2, 10, 8);

    @Test void handComputedTensorAndDataParallel() {
        Plan.Stage s = Plan.of(SMALL, new Layout(2, 2, 1), 4, 8, 1, false, 1).worst();
        // per layer: 2 LayerNorms 16 + c_attn (48+12)/2 + c_proj 16/2 + 4 + c_fc (64+16)/2 + mlp proj 64/2 + 4 = 134
        // 2 layers 268 + wte 10/2*4 = 20 + wpe 32 + ln_f 8 = 328
        assertEquals(328, s.params());
        assertEquals(328, s.gradients());
        assertEquals(656, s.optimizer());
        // per layer, n = 2 rows * 8 = 16 tokens: 16 * (4+2+6+2+4+4+2+16+4) + 2*1*8*8 = 832; x2 = 1664;
        // + encoded 64 + ln_f 64+32 + logits 5*16 + losses 16 = 1920; + backward scratch 192+96+128 = 2336
        assertEquals(2336, s.activations());
        assertEquals(4 * (328 + 328 + 656 + 2336), s.memoryBytes());
        // dp: all-reduce of 1312 B over 2 ranks sends 1312 B, + 16 B of loss statistics
        assertEquals(1328, s.dpBytes());
        // tp: 4 all-reduces of 16*4 floats (256 B -> 256 B sent) per layer = 2048, embedding 256, head 256 + 64 + 128
        assertEquals(2752, s.tpBytes());
        assertEquals(0, s.ppBytes());
    }

    @Test void handComputedPipeline() {
        Plan p = Plan.of(SMALL, new Layout(1, 1, 2), 4, 8, 4, false, 1);
        Plan.Stage s0 = Plan.stage(SMALL, p.layout(), 0, 4, 8, 4, false, 1, false, 4), s1 = Plan.stage(SMALL, p.layout(), 1, 4, 8, 4, false, 1, false, 4);
        assertEquals(244 + 40 + 32, s0.params());
        assertEquals(244 + 8 + 40, s1.params()); // ln_f and the tied head's copy of wte
        // stage 0 keeps min(K=4, pp-0=2) micro-batches: 2 * (2688 + 128) + 1280
        assertEquals(6912, s0.activations());
        assertEquals(2688 + 544 + 1280, s1.activations());
        assertEquals(0, p.worst().stage());
        assertEquals(4 * 4 * 32 * 4, s0.ppBytes()); // K micro-batches of n*C floats forward
        assertEquals(4 * 4 * 32 * 4, s1.ppBytes()); // and their gradients back
        assertTrue(p.report(1, 0, 0).contains("pipeline bubble (1F1B): 20.0%"));
        // the global batch of a step counts every micro-batch: 4 rows x 4 micro-batches
        assertTrue(p.report(1, 0, 0).contains("global batch 16 rows x 8 tokens per step (4 micro-batch(es) of 4 rows"), p.report(1, 0, 0));
    }

    @Test void parameterCountsMatchTheModel() {
        for (GptConfig c : List.of(SMALL, CFG, GptConfig.preset("cerebras-gpt-111m"))) {
            Plan p = Plan.of(c, Layout.single(), 1, 8, 1, false, 1);
            assertEquals(new Gpt(c).parameterCount(), p.worst().params(), c.toString());
        }
    }

    @Test void predictedBytesEqualWhatARunSends() {
        Path shard = tokens(tmp, 3000);
        for (boolean zero : new boolean[]{false, true}) {
            long measured = ThreadCommunicator.run(2, Duration.ofSeconds(60), c -> {
                try (TokenLoader l = new TokenLoader(List.of(shard), 4, 16, false, 0)) {
                    DataParallelTrainer t = new DataParallelTrainer(c, Gpt.init(CFG, SEED), l, options(1, 4, 16, 1), zero, 1 << 20);
                    t.trainStep();
                    return t.lastStepBytes();
                }
            }).get(0);
            long predicted = Plan.of(CFG, new Layout(2, 1, 1), 4, 16, 1, zero, 1).worst().bytesPerStep();
            if (!zero) assertEquals(predicted, measured);
            else assertTrue(Math.abs(predicted - measured) <= 0.001 * predicted, predicted + " vs " + measured); // + padding, norm
        }
    }

    @Test void cliReportsWhether67bFits() {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = Wafer.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute("plan", "--preset", "cerebras-gpt-6.7b", "--parallel", "dp=2,tp=4", "--batch-size", "8",
                "--seq-len", "2048", "--machines", "2", "--memory-per-machine", "640GB", "--bandwidth", "100Gbit/s", "--zero1");
        assertEquals(0, code, err.toString());
        String o = out.toString();
        assertTrue(o.contains("6.66B parameters") && o.contains("dp=2,tp=4,pp=1 = 8 ranks") && o.contains("fits in")
                && o.contains("between machines:") && o.contains("at 11.64 GiB/s"), o);
        code = cl.execute("plan", "--preset", "cerebras-gpt-6.7b", "--memory-per-machine", "80GB");
        assertEquals(0, code);
        assertTrue(out.toString().contains("does NOT fit in"), out.toString());
        code = cl.execute("plan", "--parallel", "dp=2");
        assertEquals(2, code);
        assertTrue(err.toString().contains("give exactly one of --preset NAME or --config PATH"), err.toString());
    }

    @Test void sizesAndBandwidths() {
        assertEquals(80_000_000_000L, Plan.parseBytes("80GB"));
        assertEquals(64L << 30, Plan.parseBytes("64GiB"));
        assertEquals(1.25e9, Plan.parseBandwidth("10Gbit/s"));
        assertEquals(12.5e9, Plan.parseBandwidth("12.5GB/s"));
    }
}
