package ai.wafer.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code wafer bench ...}: the benchmarks behind BENCHMARKS.md. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks (see BENCHMARKS.md).",
        subcommands = {BenchTrainCommand.class, BenchTokenizeCommand.class, BenchGenerateCommand.class, BenchServeCommand.class})
public final class BenchCommand implements Runnable {
    @Override public void run() { new CommandLine(this).usage(System.out); }
}
