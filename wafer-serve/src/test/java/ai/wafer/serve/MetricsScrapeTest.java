package ai.wafer.serve;

import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.hawkular.agent.prometheus.text.TextPrometheusMetricDataParser;
import org.hawkular.agent.prometheus.types.Counter;
import org.hawkular.agent.prometheus.types.Gauge;
import org.hawkular.agent.prometheus.types.Histogram;
import org.hawkular.agent.prometheus.types.MetricFamily;
import org.hawkular.agent.prometheus.types.MetricType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 17 item 7: {@code GET /metrics} in Prometheus' text format, scraped over HTTP as Prometheus does and read by a
 * parser from outside Wafer and the Prometheus client (Hawkular's): the metric names, their types and their values
 * after a few requests.
 */
class MetricsScrapeTest {
    static WaferServer server;
    static HttpClient http = HttpClient.newHttpClient();

    @BeforeAll static void start() throws Exception {
        Path dir = Files.createTempDirectory("wafer-metrics");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 64), 5), dir);
        Files.copy(Fixtures.TOKENIZER.resolve("vocab.json"), dir.resolve("vocab.json"));
        Files.copy(Fixtures.TOKENIZER.resolve("merges.txt"), dir.resolve("merges.txt"));
        server = new WaferServer(LoadedModel.load(dir, null, null, WeightType.F32),
                new WaferServer.Config("127.0.0.1", 0, null, 4, 16, 64 * 1024, Integer.MAX_VALUE, 64, 120));
    }

    @AfterAll static void stop() { if (server != null) server.close(); }

    static HttpResponse<String> send(HttpRequest.Builder r) throws Exception {
        return http.send(r.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Every metric family of a scrape, by name. */
    static Map<String, MetricFamily> scrape() throws Exception {
        HttpResponse<String> r = send(HttpRequest.newBuilder(URI.create(server.url() + "/metrics")));
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"), r.headers().toString());
        var parser = new TextPrometheusMetricDataParser(new ByteArrayInputStream(r.body().getBytes(StandardCharsets.UTF_8)));
        Map<String, MetricFamily> out = new HashMap<>();
        for (MetricFamily f; (f = parser.parse()) != null; ) out.put(f.getName(), f);
        return out;
    }

    static double counter(Map<String, MetricFamily> m, String name) {
        MetricFamily f = m.get(name);
        assertEquals(MetricType.COUNTER, f.getType(), name);
        return ((Counter) f.getMetrics().getFirst()).getValue();
    }

    @Test void textFormatNamesTypesAndValues() throws Exception {
        Map<String, MetricFamily> before = scrape();
        int n = 3;
        long generated = 0, prompted = 0;
        for (int i = 0; i < n; i++) {
            var r = send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"Hello there\", \"max_tokens\": 4, \"temperature\": 0}")));
            assertEquals(200, r.statusCode(), r.body());
            var usage = new ObjectMapper().readTree(r.body()).get("usage");
            generated += usage.get("completion_tokens").asLong();
            prompted += usage.get("prompt_tokens").asLong();
        }
        assertEquals(400, send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"x\", \"max_tokens\": -1}"))).statusCode());
        Map<String, MetricFamily> after = scrape();

        // every request is counted as it arrives: the completions, the bad one (which failed) and this scrape itself
        assertEquals(n + 2, counter(after, "wafer_requests_total") - counter(before, "wafer_requests_total"));
        assertEquals(n, counter(after, "wafer_requests_completed_total") - counter(before, "wafer_requests_completed_total"));
        assertEquals(1, counter(after, "wafer_requests_failed_total") - counter(before, "wafer_requests_failed_total"));
        assertTrue(generated > 0);
        assertEquals(generated, counter(after, "wafer_generated_tokens_total") - counter(before, "wafer_generated_tokens_total"));
        assertEquals(prompted, counter(after, "wafer_prompt_tokens_total") - counter(before, "wafer_prompt_tokens_total"));
        assertTrue(counter(after, "wafer_decode_busy_seconds_total") > 0);

        for (String g : new String[] {"wafer_queued_requests", "wafer_active_sequences", "wafer_uptime_seconds"})
            assertEquals(MetricType.GAUGE, after.get(g).getType(), g);
        assertEquals(0, ((Gauge) after.get("wafer_active_sequences").getMetrics().getFirst()).getValue());
        assertTrue(((Gauge) after.get("wafer_uptime_seconds").getMetrics().getFirst()).getValue() > 0);

        for (String h : new String[] {"wafer_request_duration_seconds", "wafer_time_to_first_token_seconds"}) {
            MetricFamily f = after.get(h);
            assertEquals(MetricType.HISTOGRAM, f.getType(), h);
            Histogram hist = (Histogram) f.getMetrics().getFirst();
            assertEquals(n, hist.getSampleCount() - ((Histogram) before.get(h).getMetrics().getFirst()).getSampleCount(), h);
            assertTrue(hist.getSampleSum() > 0, h);
            var last = hist.getBuckets().getLast();
            assertEquals(Double.POSITIVE_INFINITY, last.getUpperBound(), h);
            assertEquals(hist.getSampleCount(), last.getCumulativeCount(), h);
        }

        // the JSON summary stays available on request
        var json = send(HttpRequest.newBuilder(URI.create(server.url() + "/metrics?format=json")));
        assertEquals((long) counter(after, "wafer_generated_tokens_total"),
                new ObjectMapper().readTree(json.body()).get("generated_tokens_total").asLong(), json.body());
    }
}
