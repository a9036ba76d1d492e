package ai.wafer.serve;

import io.javalin.http.Context;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Server counters for {@code GET /metrics}: requests by outcome, tokens, throughput and latency. Prometheus' text
 * format by default, through the Prometheus Java client (counters, gauges, and latency histograms from which
 * Prometheus computes rates and quantiles); the JSON summary (with percentiles of the last requests) on
 * {@code ?format=json} or {@code Accept: application/json}.
 */
final class Metrics {
    private static final int WINDOW = 1024; // latencies of the last requests, for percentiles
    final long started = System.nanoTime();
    final AtomicLong requests = new AtomicLong(), errors = new AtomicLong(), completed = new AtomicLong();
    final AtomicLong promptTokens = new AtomicLong(), generatedTokens = new AtomicLong();
    final AtomicLong decodeSteps = new AtomicLong(), busyNanos = new AtomicLong();
    private final double[] latencies = new double[WINDOW];
    private final double[] firstToken = new double[WINDOW];
    private long latencyCount;

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Gauge queuedGauge = Gauge.builder().name("wafer_queued_requests").help("Requests waiting for a slot").register(registry);
    private final Gauge activeGauge = Gauge.builder().name("wafer_active_sequences").help("Sequences being generated or classified").register(registry);
    private final Histogram latency = histogram("wafer_request_duration_seconds", "Time from a request's arrival to its last token");
    private final Histogram ttft = histogram("wafer_time_to_first_token_seconds", "Time from a request's arrival to its first token");

    Metrics() {
        counter("wafer_requests", "Requests received", requests::get);
        counter("wafer_requests_completed", "Generation requests completed", completed::get);
        counter("wafer_requests_failed", "Requests answered with an error (but 401)", errors::get);
        counter("wafer_prompt_tokens", "Prompt tokens prefilled", promptTokens::get);
        counter("wafer_generated_tokens", "Tokens generated", generatedTokens::get);
        counter("wafer_decode_steps", "Batched decoding steps", decodeSteps::get);
        CounterWithCallback.builder().name("wafer_decode_busy_seconds").help("Time spent prefilling and decoding")
                .callback(c -> c.call(busyNanos.get() / 1e9)).register(registry);
        GaugeWithCallback.builder().name("wafer_uptime_seconds").help("Time since the server started")
                .callback(c -> c.call((System.nanoTime() - started) / 1e9)).register(registry);
    }

    private void counter(String name, String help, LongSupplier value) {
        CounterWithCallback.builder().name(name).help(help).callback(c -> c.call(value.getAsLong())).register(registry);
    }

    private Histogram histogram(String name, String help) {
        return Histogram.builder().name(name).help(help).unit(io.prometheus.metrics.model.snapshots.Unit.SECONDS).classicOnly()
                .classicUpperBounds(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120).register(registry);
    }

    /** Answers {@code GET /metrics}: JSON on {@code ?format=json} or {@code Accept: application/json}, else Prometheus text. */
    void answer(Context c, int queued, int active) throws IOException {
        String format = c.queryParam("format"), accept = c.header("Accept");
        if ("json".equals(format) || format == null && accept != null && accept.contains("application/json")) {
            c.json(snapshot(queued, active));
            return;
        }
        if (format != null && !format.equals("prometheus")) throw ApiException.bad("format must be prometheus or json, got '" + format + "'", "format");
        queuedGauge.set(queued);
        activeGauge.set(active);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrometheusTextFormatWriter text = PrometheusTextFormatWriter.create();
        text.write(out, registry.scrape());
        c.contentType(text.getContentType()).result(out.toByteArray());
    }

    synchronized void finished(double seconds, double firstTokenSeconds) {
        latency.observe(seconds);
        ttft.observe(firstTokenSeconds);
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
