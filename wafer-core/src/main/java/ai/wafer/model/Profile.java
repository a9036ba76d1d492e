package ai.wafer.model;

import java.util.LinkedHashMap;
import java.util.List;
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
    public static long t() { return on ? System.nanoTime() : 0; }

    /** Adds the time since {@code t0} to {@code what}; returns now, to chain. */
    public static long add(String what, long t0) {
        if (!on) return 0;
        long now = System.nanoTime();
        NANOS.computeIfAbsent(prefix.isEmpty() ? what : prefix + what, k -> new long[1])[0] += now - t0;
        return now;
    }

    public static String report(int steps) { return report(steps, Map.of(), 0); }

    /**
     * The table, with each product's GFLOP/s from {@code flops} (per step, by label: {@link #flops}) against
     * {@code peak}, the GFLOP/s the product's path reached alone on a layer shape (0: not shown), and the products'
     * share of the profiled time.
     */
    public static String report(int steps, Map<String, Double> flops, double peak) {
        long total = 0, products = 0;
        for (var e : NANOS.entrySet()) {
            total += e.getValue()[0];
            if (flops.containsKey(e.getKey())) products += e.getValue()[0];
        }
        StringBuilder sb = new StringBuilder(String.format("%-28s %10s %7s%s%n", "per step", "ms", "share",
                flops.isEmpty() ? "" : String.format(" %9s%s", "GFLOP/s", peak > 0 ? "  of peak" : "")));
        for (var e : NANOS.entrySet()) {
            double ms = e.getValue()[0] / 1e6 / steps;
            sb.append(String.format("%-28s %10.2f %6.1f%%", e.getKey(), ms, 100.0 * e.getValue()[0] / total));
            Double f = flops.get(e.getKey());
            if (f != null) {
                double g = f / (ms / 1e3) / 1e9;
                sb.append(String.format(" %9.1f", g));
                if (peak > 0) sb.append(String.format("  %6.0f%%", 100 * g / peak));
            }
            sb.append('\n');
        }
        sb.append(String.format("%-28s %10.2f%n", "total (profiled)", total / 1e6 / steps));
        if (!flops.isEmpty()) sb.append(String.format("%-28s %10.2f %6.1f%%  (the rows with GFLOP/s)%n", "matrix products", products / 1e6 / steps, 100.0 * products / total));
        return sb.toString();
    }

    /**
     * Floating-point operations of one training step (every weight trainable) by {@link #report} label: a product
     * m x n x k is 2mnk; backward runs two per forward one (input and weight gradients); causal attention counts the
     * scores it computes, T(T+1)/2 a head and row, in QK^T and PV (backward: four products of that size).
     */
    public static Map<String, Double> flops(GptConfig c, int B, int T) {
        double BT = (double) B * T, C = c.nEmbd(), L = c.nLayer(), F = c.nInner(), V = c.vocabSize();
        double attn = 2.0 * C * T * (T + 1.0) * B * L;
        Map<String, Double> f = new LinkedHashMap<>();
        f.put("c_attn fwd", 2 * BT * C * 3 * C * L);
        f.put("attention fwd", attn);
        f.put("attn.c_proj fwd", 2 * BT * C * C * L);
        f.put("c_fc fwd", 2 * BT * C * F * L);
        f.put("mlp.c_proj fwd", 2 * BT * F * C * L);
        f.put("lm_head fwd", 2 * BT * C * V);
        for (String k : List.copyOf(f.keySet())) f.put(k.replace(" fwd", " bwd"), 2 * f.get(k));
        return f;
    }
}
