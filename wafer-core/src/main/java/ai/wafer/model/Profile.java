package ai.wafer.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where a training step's time goes, by layer kind, for {@code wafer bench train --profile}.
 * Off by default: the hooks in {@link Gpt} then cost one branch each.
 */
public final class Profile {
    private Profile() {}

    private static boolean on;
    private static final Map<String, long[]> NANOS = new LinkedHashMap<>();
    /** "recompute " while backward reruns a block's forward ({@code --recompute}), so that time shows apart from the forward's. */
    private static String prefix = "";

    static void recomputing(boolean on) { prefix = on ? "recompute " : ""; }

    public static void start() { on = true; NANOS.clear(); }
    public static void stop() { on = false; }

    /** A timestamp when profiling, else 0. */
    static long t() { return on ? System.nanoTime() : 0; }

    /** Adds the time since {@code t0} to {@code what}; returns now, to chain. */
    static long add(String what, long t0) {
        if (!on) return 0;
        long now = System.nanoTime();
        NANOS.computeIfAbsent(prefix.isEmpty() ? what : prefix + what, k -> new long[1])[0] += now - t0;
        return now;
    }

    public static String report(int steps) {
        long total = 0;
        for (long[] v : NANOS.values()) total += v[0];
        StringBuilder sb = new StringBuilder(String.format("%-28s %10s %7s%n", "per step", "ms", "share"));
        for (var e : NANOS.entrySet())
            sb.append(String.format("%-28s %10.2f %6.1f%%%n", e.getKey(), e.getValue()[0] / 1e6 / steps, 100.0 * e.getValue()[0] / total));
        sb.append(String.format("%-28s %10.2f%n", "total (profiled)", total / 1e6 / steps));
        return sb.toString();
    }
}
