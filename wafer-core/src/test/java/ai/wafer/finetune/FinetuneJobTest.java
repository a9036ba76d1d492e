package ai.wafer.finetune;

import ai.wafer.data.Example;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Task;
import ai.wafer.peft.Peft;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rules {@code wafer finetune} used to decide itself: which base load, which sample. */
class FinetuneJobTest {
    @TempDir Path tmp;

    @Test void fullLoadsTheBaseOnTheHeapOtherMethodsMapIt() {
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 64, 16), 3), tmp);
        assertFalse(FinetuneJob.loadBase(tmp, Peft.Kind.FULL).parameters().getFirst().isMapped());
        for (Peft.Kind k : List.of(Peft.Kind.LORA, Peft.Kind.BITFIT, Peft.Kind.PREFIX))
            assertTrue(FinetuneJob.loadBase(tmp, k).parameters().getFirst().isMapped(), k.cliName());
    }

    @Test void aSampleKeepsFileOrderAndIsSeeded() {
        List<Example> ex = new ArrayList<>();
        List<List<String>> gold = new ArrayList<>();
        List<int[]> pos = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            ex.add(new Example(new int[] {i}, new int[] {0}, 0));
            gold.add(List.of("x" + i));
            pos.add(new int[] {0});
        }
        TaskData all = new TaskData(Task.SEQUENCE_CLASSIFICATION, ex, gold, pos, List.of("a", "b"), Set.of(), 0, "f");
        TaskData s = all.sample(5, 7);
        assertEquals(5, s.examples().size());
        assertEquals(5, s.gold().size());
        for (int i = 1; i < 5; i++) assertTrue(s.examples().get(i - 1).ids()[0] < s.examples().get(i).ids()[0], "file order");
        for (int i = 0; i < 5; i++) assertEquals("x" + s.examples().get(i).ids()[0], s.gold().get(i).getFirst(), "gold follows its example");
        assertEquals(s.examples(), all.sample(5, 7).examples(), "same seed, same sample");
        assertEquals("f (5 sampled)", s.file());
        assertSame(all, all.sample(0, 7));
        assertSame(all, all.sample(20, 7));
    }
}
