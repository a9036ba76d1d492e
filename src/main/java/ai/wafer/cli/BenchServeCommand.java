package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.WeightType;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.serve.WaferServer;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code wafer bench serve}: the HTTP server under N concurrent streaming completions. It starts the server in this
 * process on loopback, and for each stream count sends that many {@code stream: true} requests at once (greedy, a
 * fixed prompt, {@code max_tokens} each), reading the server-sent events as a client would; the best of
 * {@code --rounds} rounds per count is reported (this shared machine is noisy). Reported: aggregate
 * completion tokens/s (all streams' tokens over the wall time of the round), per-stream tokens/s, and the time to
 * the first token (median and worst). Concurrent requests are decoded together, so the aggregate should grow with N.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Benchmark the HTTP server: aggregate tokens/s of N concurrent streaming completions.")
public final class BenchServeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--preset", defaultValue = "cerebras-gpt-111m", description = "model shape, random weights (default: ${DEFAULT-VALUE})") String preset;
    @Option(names = "--model", paramLabel = "DIR", description = "a checkpoint instead of a preset") Path model;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer directory (default: the model's, or the bundled GPT-2 one)") Path tokenizerDir;
    @Option(names = "--dtype", defaultValue = "fp32", description = "fp32 or bf16 (default: ${DEFAULT-VALUE})") String dtype;
    @Option(names = "--streams", split = ",", defaultValue = "1,8", description = "concurrent streams per round (default: ${DEFAULT-VALUE})") List<Integer> streams;
    @Option(names = "--max-tokens", defaultValue = "64", description = "tokens per completion (default: ${DEFAULT-VALUE})") int maxTokens;
    @Option(names = "--prompt-words", defaultValue = "32", description = "words in the prompt (default: ${DEFAULT-VALUE})") int promptWords;
    @Option(names = "--rounds", defaultValue = "3", description = "rounds per stream count; the best aggregate is reported (default: ${DEFAULT-VALUE})") int rounds;

    @Override public Integer call() throws Exception {
        if (maxTokens < 1 || promptWords < 1 || rounds < 1 || streams.stream().anyMatch(s -> s < 1))
            throw new WaferException("--max-tokens, --prompt-words, --rounds and --streams must be positive");
        WeightType type = WeightType.parse(dtype);
        Path tokDir = tokenizerDir != null ? tokenizerDir
                : model != null ? model : Path.of(System.getProperty("wafer.home", ".")).resolve("data").resolve("gpt2-tokenizer");
        Gpt gpt = model != null ? Checkpoint.load(model) : Gpt.init(GptConfig.preset(preset), 0);
        LoadedModel lm = new LoadedModel(model != null ? model.toString() : preset, new InferenceModel(gpt, type), Tokenizer.load(tokDir));
        int maxBatch = streams.stream().mapToInt(Integer::intValue).max().orElse(1);
        var cfg = new WaferServer.Config("127.0.0.1", 0, null, Math.max(16, maxBatch), Math.max(64, 2 * maxBatch), 1 << 20,
                Integer.MAX_VALUE, maxTokens, 600);
        String prompt = String.join(" ", java.util.Collections.nCopies(promptWords, "the")).replaceFirst("the", "Once upon a time");
        HttpClient http = HttpClient.newHttpClient();
        try (WaferServer server = new WaferServer(lm, cfg)) {
            System.out.printf(Locale.ROOT, "model %s (%s), %,d parameters; prompt %d words, %d tokens per completion, greedy%n",
                    lm.name(), dtype, gpt.parameterCount(), promptWords, maxTokens);
            // warm-up: the JIT (decode kernels for batch 1 and for batches), thread pools, connections; one round
            // of each left the first measured round 30-40% slow
            for (int w = 0; w < 2; w++) {
                round(http, server.url(), prompt, 1);
                round(http, server.url(), prompt, maxBatch);
            }
            System.out.println("| streams | aggregate tok/s | per-stream tok/s | first token p50 ms | first token max ms | completion tokens |");
            System.out.println("|---|---|---|---|---|---|");
            for (int n : streams) {
                Result r = null;
                for (int k = 0; k < rounds; k++) {
                    Result x = round(http, server.url(), prompt, n);
                    if (r == null || x.tokens / x.seconds > r.tokens / r.seconds) r = x;
                }
                System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.0f | %.0f | %d |%n", n, r.tokens / r.seconds,
                        r.perStream, r.ttftP50 * 1e3, r.ttftMax * 1e3, r.tokens);
            }
        }
        return 0;
    }

    private record Result(long tokens, double seconds, double perStream, double ttftP50, double ttftMax) {}

    private record Stream(long tokens, double firstToken, double seconds) {}

    /** n streaming completions sent at once; the round lasts from the first send to the last [DONE]. */
    private Result round(HttpClient http, String url, String prompt, int n) throws Exception {
        String body = JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0)
                .put("stream", true).toString();
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            long t0 = System.nanoTime();
            List<Future<Stream>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) fs.add(pool.submit(() -> stream(http, url, body)));
            List<Stream> got = new ArrayList<>();
            for (Future<Stream> f : fs) got.add(f.get());
            double wall = (System.nanoTime() - t0) / 1e9;
            long tokens = got.stream().mapToLong(Stream::tokens).sum();
            double perStream = got.stream().mapToDouble(s -> s.tokens / s.seconds).average().orElse(0);
            double[] ttft = got.stream().mapToDouble(Stream::firstToken).sorted().toArray();
            return new Result(tokens, wall, perStream, ttft[(ttft.length - 1) / 2], ttft[ttft.length - 1]);
        } finally {
            pool.shutdownNow();
        }
    }

    private static Stream stream(HttpClient http, String url, String body) throws Exception {
        long t0 = System.nanoTime();
        HttpRequest req = HttpRequest.newBuilder(URI.create(url + "/v1/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<java.util.stream.Stream<String>> res = http.send(req, HttpResponse.BodyHandlers.ofLines());
        if (res.statusCode() != 200) throw new WaferException("the server answered " + res.statusCode());
        double first = Double.NaN;
        long tokens = -1;
        for (String line : (Iterable<String>) res.body()::iterator) {
            if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
            JsonNode o = JSON.readTree(line.substring(6));
            if (o.has("error")) throw new WaferException("stream failed: " + o.get("error"));
            if (Double.isNaN(first) && !o.path("choices").path(0).path("text").asText("").isEmpty())
                first = (System.nanoTime() - t0) / 1e9;
            if (o.has("usage")) tokens = o.get("usage").get("completion_tokens").asLong();
        }
        if (tokens < 0) throw new WaferException("the stream ended without a usage record");
        return new Stream(tokens, first, (System.nanoTime() - t0) / 1e9);
    }
}
