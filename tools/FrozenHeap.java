import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;

import java.nio.file.Path;

/**
 * The heap a model directory costs as a frozen base for LoRA ({@code Checkpoint.loadFrozen}) and loaded whole onto the
 * heap ({@code Checkpoint.load}): used heap after a full GC, before and after each load. Run after a build:
 * {@code java --add-modules jdk.incubator.vector -cp "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/FrozenHeap.java DIR}
 */
public class FrozenHeap {
    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        long before = used();
        Gpt frozen = Checkpoint.loadFrozen(dir);
        long frozenHeap = used() - before, mapped = 0, all = 0;
        for (Parameter p : frozen.parameters()) {
            all += 4L * p.size();
            if (p.isMapped()) mapped += 4L * p.size();
        }
        System.out.printf("%s: %.1f MB of float32 parameters, %.1f MB of them mapped from the file%n", dir, all / 1e6, mapped / 1e6);
        System.out.printf("loadFrozen: %.1f MB of heap%n", frozenHeap / 1e6);
        frozen = null;
        before = used();
        Gpt heap = Checkpoint.load(dir);
        System.out.printf("load:       %.1f MB of heap (%d parameters)%n", (used() - before) / 1e6, heap.parameters().size());
    }

    static long used() {
        Runtime r = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) System.gc();
        return r.totalMemory() - r.freeMemory();
    }
}
