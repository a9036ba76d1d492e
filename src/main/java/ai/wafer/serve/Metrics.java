package ai.wafer.serve;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/** Server counters for {@code GET /metrics}: requests by outcome, tokens, throughput and latency percentiles. */
final class Metrics {
    private static final int WINDOW = 1024; // latencies of the last requests, for percentiles
    final long started = System.nanoTime();
    final AtomicLong requests = new AtomicLong(), errors = new AtomicLong(), completed = new AtomicLong();
    final AtomicLong promptTokens = new AtomicLong(), generatedTokens = new AtomicLong();
    final AtomicLong decodeSteps = new AtomicLong(), busyNanos = new AtomicLong();
    private final double[] latencies = new double[WINDOW];
    private final double[] firstToken = new double[WINDOW];
    private long latencyCount;

    synchronized void finished(double seconds, double firstTokenSeconds) {
        int i = (int) (latencyCount++ % WINDOW);
        latencies[i] = seconds;
        firstToken[i] = firstTokenSeconds;
        completed.incrementAndGet();
    }

    synchronized Map<String, Object> snapshot(int queued, int active) {
        Map<String, Object> m = new LinkedHashMap<>();
        double up = (System.nanoTime() - started) / 1e9;
        m.put("uptime_s", round(up));
        m.put("requests_total", requests.get());
        m.put("requests_completed", completed.get());
        m.put("requests_failed", errors.get());
        m.put("queued", queued);
        m.put("active_sequences", active);
        m.put("prompt_tokens_total", promptTokens.get());
        m.put("generated_tokens_total", generatedTokens.get());
        double busy = busyNanos.get() / 1e9;
        m.put("decode_steps_total", decodeSteps.get()); // generated tokens per step: the mean batch
        m.put("decode_busy_s", round(busy));
        m.put("tokens_per_s_busy", round(busy > 0 ? generatedTokens.get() / busy : 0));
        m.put("tokens_per_s_uptime", round(up > 0 ? generatedTokens.get() / up : 0));
        int n = (int) Math.min(latencyCount, WINDOW);
        m.put("latency_s", percentiles(latencies, n));
        m.put("time_to_first_token_s", percentiles(firstToken, n));
        return m;
    }

    private static Map<String, Object> percentiles(double[] a, int n) {
        double[] s = Arrays.copyOf(a, n);
        Arrays.sort(s);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("count", n);
        for (int p : new int[] {50, 90, 99}) m.put("p" + p, n == 0 ? 0 : round(s[Math.min(n - 1, (int) Math.ceil(p / 100.0 * n) - 1)]));
        return m;
    }

    private static double round(double x) { return Math.round(x * 1000) / 1000.0; }
}
