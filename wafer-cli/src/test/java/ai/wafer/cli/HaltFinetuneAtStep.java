package ai.wafer.cli;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.Writer;
import java.util.Arrays;

/**
 * {@code wafer finetune} for resume tests: {@code HaltFinetuneAtStep N finetune ...} ends the process as abruptly as
 * kill -9 (exit 137, no shutdown hooks) when the run logs step N's dev evaluation (give --dev and --eval-every 1): step
 * N's update is done, its metrics row and checkpoint are not written.
 */
public final class HaltFinetuneAtStep {
    public static void main(String[] args) {
        String mark = "step " + args[0] + ": dev loss";
        CommandLine cl = Wafer.commandLine();
        StringBuilder seen = new StringBuilder(); // printf writes a line in pieces
        cl.setErr(new PrintWriter(new Writer() {
            @Override public void write(char[] c, int off, int len) {
                System.err.print(new String(c, off, len));
                if (seen.append(c, off, len).indexOf(mark) >= 0) Runtime.getRuntime().halt(137);
            }

            @Override public void flush() { System.err.flush(); }

            @Override public void close() {}
        }, true));
        System.exit(cl.execute(Arrays.copyOfRange(args, 1, args.length)));
    }
}
