package ai.wafer.cli;

import ai.wafer.plot.Plot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import ai.wafer.WaferException;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code wafer plot RUN_DIR...}: draws the training curves of a run, or compares runs, from their metrics.jsonl. */
@Command(name = "plot", mixinStandardHelpOptions = true,
        description = "Plot loss (train, eval) and learning rate against step from RUN_DIR/metrics.jsonl into a PNG;"
                + " with several runs, their losses on one chart (e.g. fp32 against bf16).")
public final class PlotCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "RUN_DIR", description = "run directory (or a metrics.jsonl file); several to compare")
    List<Path> runDirs;

    @Option(names = "--out", paramLabel = "FILE.png", description = "output PNG (default: RUN_DIR/curves.png; required to compare runs)")
    Path out;

    @Spec CommandSpec spec;

    @Override public Integer call() {
        if (runDirs.size() > 1) {
            if (out == null) throw new WaferException("comparing " + runDirs.size() + " runs: give --out FILE.png");
            spec.commandLine().getOut().println(Plot.compare(runDirs, out));
            return 0;
        }
        Path runDir = runDirs.getFirst();
        Path dir = java.nio.file.Files.isDirectory(runDir) ? runDir : runDir.toAbsolutePath().getParent();
        Path png = out != null ? out : dir.resolve("curves.png");
        spec.commandLine().getOut().println(Plot.write(runDir, png));
        return 0;
    }
}
