package ai.wafer.cli;

import ai.wafer.track.Plot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code wafer plot RUN_DIR}: draws the training curves of a run from its metrics.jsonl. */
@Command(name = "plot", mixinStandardHelpOptions = true,
        description = "Plot loss (train, eval) and learning rate against step from RUN_DIR/metrics.jsonl into a PNG.")
public final class PlotCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "RUN_DIR", description = "run directory (or a metrics.jsonl file)")
    Path runDir;

    @Option(names = "--out", paramLabel = "FILE.png", description = "output PNG (default: RUN_DIR/curves.png)")
    Path out;

    @Spec CommandSpec spec;

    @Override public Integer call() {
        Path dir = java.nio.file.Files.isDirectory(runDir) ? runDir : runDir.toAbsolutePath().getParent();
        Path png = out != null ? out : dir.resolve("curves.png");
        spec.commandLine().getOut().println(Plot.write(runDir, png));
        return 0;
    }
}
