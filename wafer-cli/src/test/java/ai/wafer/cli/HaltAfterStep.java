package ai.wafer.cli;

import picocli.CommandLine;

import java.util.Arrays;

/**
 * {@code wafer} for resume tests: {@code HaltAfterStep N pretrain ...} ends the process as abruptly as kill -9
 * (exit 137, no shutdown hooks) once step N is done, through the loop's per-step call.
 */
public final class HaltAfterStep {
    public static void main(String[] args) {
        int n = Integer.parseInt(args[0]);
        CommandLine cl = Wafer.commandLine();
        ((PretrainCommand) cl.getSubcommands().get("pretrain").getCommand()).afterStep = r -> {
            if (r.step() == n) Runtime.getRuntime().halt(137);
        };
        System.exit(cl.execute(Arrays.copyOfRange(args, 1, args.length)));
    }
}
