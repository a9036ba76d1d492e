package ai.wafer.track;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.util.function.LongConsumer;

/**
 * Progress of a long job on stderr, for the commands that would otherwise be silent for a while (evaluations): a bar
 * for a person at a terminal; in a log file, a line at most every 10 seconds. {@link #accept} takes the count done.
 */
public final class Progress implements LongConsumer, AutoCloseable {
    private final String task;
    private final long max;
    private final ProgressBar bar;
    private final long t0 = System.nanoTime();
    private long lastLine = t0;

    public Progress(String task, long max, String unit) {
        this.task = task;
        this.max = max;
        bar = !Terminal.interactive() ? null : new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setUnit(" " + unit, 1)
                .setStyle(ProgressBarStyle.ASCII).showSpeed().setConsumer(new ConsoleProgressBarConsumer(System.err)).build();
    }

    @Override public void accept(long done) {
        if (bar != null) { bar.stepTo(done); return; }
        long now = System.nanoTime();
        if (now - lastLine < 10_000_000_000L) return;
        lastLine = now;
        System.err.printf("%s: %d of %d (%.0f s)%n", task, done, max, (now - t0) / 1e9);
    }

    @Override public void close() { if (bar != null) bar.close(); }
}
