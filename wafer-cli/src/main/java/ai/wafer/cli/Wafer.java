package ai.wafer.cli;

import ai.wafer.WaferException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code wafer} command: one subcommand per job. */
@Command(name = "wafer", mixinStandardHelpOptions = true, version = "wafer 0.1.0",
        description = "Pretrain, fine-tune, evaluate and serve GPT-style (Cerebras-GPT) language models.",
        subcommands = {
                // one line per subcommand; keep sorted by job
                DemoCommand.class,
                PretrainCommand.class,
                FinetuneCommand.class,
                EvaluateCommand.class,
                BaselineCommand.class,
                PlanCommand.class,
                EvalLmCommand.class,
                EvalChoiceCommand.class,
                BenchCommand.class,
                PlotCommand.class,
                TokenizeCommand.class,
                PrepareCommand.class,
                GenerateCommand.class,
                ChatCommand.class,
                ServeCommand.class,
                ConvertCommand.class,
                InitCommand.class,
                CommandLine.HelpCommand.class,
        })
public final class Wafer implements Runnable {
    @Override public void run() { new CommandLine(this).usage(System.out); }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line; bad input becomes a one-line error and exit code 2, not a stack trace. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Wafer());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof WaferException || ex instanceof java.io.IOException
                    || ex instanceof IllegalArgumentException || ex instanceof java.io.UncheckedIOException) {
                cmd.getErr().println("wafer " + cmd.getCommandName() + ": error: " + ex.getMessage());
                if (System.getenv("WAFER_DEBUG") != null) ex.printStackTrace(cmd.getErr());
                return 2;
            }
            throw ex;
        });
        showDefaults(cl);
        return cl;
    }

    /**
     * Every option's default in --help: picocli's "Default:" line for each option whose description does not already
     * say its default ("default ${DEFAULT-VALUE}" or a default in words), on every subcommand.
     */
    private static void showDefaults(CommandLine cl) {
        CommandLine.Model.CommandSpec spec = cl.getCommandSpec();
        spec.usageMessage().showDefaultValues(true);
        for (CommandLine.Model.OptionSpec o : java.util.List.copyOf(spec.options())) {
            if (!String.join(" ", o.description()).contains("default")) continue;
            spec.remove(o);
            spec.addOption(CommandLine.Model.OptionSpec.builder(o).showDefaultValue(CommandLine.Help.Visibility.NEVER).build());
        }
        cl.getSubcommands().values().forEach(Wafer::showDefaults);
    }
}
