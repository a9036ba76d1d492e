package ai.wafer.cli;

import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static ai.wafer.testutil.Fixtures.fixture;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --recompute} reaches the model from pretrain (one process and data parallel), finetune and plan. */
class RecomputeCliTest {
    @TempDir Path tmp;

    private Gpt pretrain(String name, String... extra) {
        Path tiny = fixture("gpt-tiny"), out = tmp.resolve(name);
        String[] base = {"pretrain", "--init", tiny.toString(), "--data", tiny.resolve("tokens.bin").toString(), "--steps", "3",
                "--batch-size", "2", "--seq-len", "8", "--no-progress", "--out", out.toString()};
        String[] args = java.util.Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        PretrainCliTest.Run r = wafer(args);
        assertEquals(0, r.code(), r.err());
        return Checkpoint.load(out);
    }

    private static void assertSameModel(Gpt a, Gpt b, String what) {
        for (Parameter p : a.parameters()) assertArrayEquals(p.array(), b.parameter(p.name).array(), what + ": " + p.name);
    }

    @Test void pretrainWithRecomputeSavesTheSameModel() {
        assertSameModel(pretrain("kept"), pretrain("recomputed", "--recompute"), "one process");
        assertSameModel(pretrain("dp", "--parallel", "dp=2"), pretrain("dp-recomputed", "--parallel", "dp=2", "--recompute"), "dp=2");
    }

    @Test void finetuneWithRecomputeSavesTheSameAdapter() throws Exception {
        Path base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 16, 2, 50257, 32), 1), base); // two layers: the lower one is recomputed
        TokenizerFiles.copy(Fixtures.TOKENIZER, base);
        Path train = tmp.resolve("train.conll");
        Files.writeString(train, "EU\tB-ORG\nrejects\tO\nGerman\tB-MISC\ncall\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n\nBonn\tB-LOC\nsays\tO\n");
        // one process, then two data-parallel ranks (each replica recomputes its own blocks)
        for (String[] layout : new String[][] {{}, {"--parallel", "dp=2"}}) {
            byte[][] adapters = new byte[2][];
            for (int i = 0; i < 2; i++) {
                Path out = tmp.resolve("ft" + layout.length + i);
                List<String> args = new ArrayList<>(List.of("finetune", "--model", base.toString(), "--task", "token-classification",
                        "--train", train.toString(), "--method", "lora", "--lora-dropout", "0.1", "--epochs", "2", "--batch-size", "2",
                        "--no-progress", "--out", out.toString()));
                args.addAll(List.of(layout));
                if (i == 1) args.add("--recompute");
                var r = wafer(args.toArray(String[]::new));
                assertEquals(0, r.code(), r.err());
                assertEquals(i == 1, r.err().contains("activations recomputed in backward"), r.err());
                adapters[i] = Files.readAllBytes(out.resolve("adapter_model.safetensors"));
            }
            assertArrayEquals(adapters[0], adapters[1], "LoRA adapter (with dropout) trained with and without --recompute " + List.of(layout));
        }
    }

    @Test void planRecompute() {
        var out = new java.io.StringWriter();
        var cl = Wafer.commandLine();
        cl.setOut(new java.io.PrintWriter(out, true));
        assertEquals(0, cl.execute("plan", "--preset", "cerebras-gpt-111m", "--batch-size", "4", "--seq-len", "256", "--recompute"));
        assertTrue(out.toString().contains("activation recomputation"), out.toString());
    }
}
