package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.WeightType;
import ai.wafer.io.AtomicFiles;
import ai.wafer.io.Checkpoint;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.FineTuned;
import ai.wafer.peft.Fingerprint;
import ai.wafer.peft.Lora;
import ai.wafer.peft.Method;
import ai.wafer.peft.Peft;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
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
 * With {@code --adapters merged,1,4,16}: the same with LoRA adapters, one merged into the weights against N unmerged
 * over one base, the streams' requests spread over the N (so each batch mixes them).
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
    @Option(names = "--adapters", split = ",", paramLabel = "merged|N", description = "serve LoRA adapters (random, as if trained): 'merged' one merged into the weights, N adapters unmerged over one base with the streams' requests spread over them (mixed in each batch); a table row per setting and stream count (default: none, the model alone)") List<String> adapters;
    @Option(names = "--lora-r", defaultValue = "8", description = "the adapters' rank (default: ${DEFAULT-VALUE})") int loraR;
    @Option(names = "--lora-targets", split = ",", defaultValue = "c_attn,attn.c_proj,c_fc,mlp.c_proj", description = "the adapters' target modules (default: ${DEFAULT-VALUE})") List<String> loraTargets;

    @Override public Integer call() throws Exception {
        if (maxTokens < 1 || promptWords < 1 || rounds < 1 || streams.stream().anyMatch(s -> s < 1))
            throw new WaferException("--max-tokens, --prompt-words, --rounds and --streams must be positive");
        WeightType type = WeightType.parse(dtype);
        Path tokDir = tokenizerDir != null ? tokenizerDir
                : model != null ? model : Path.of(System.getProperty("wafer.home", ".")).resolve("data").resolve("gpt2-tokenizer");
        int maxBatch = streams.stream().mapToInt(Integer::intValue).max().orElse(1);
        var cfg = new WaferServer.Config("127.0.0.1", 0, null, Math.max(16, maxBatch), Math.max(64, 2 * maxBatch), 1 << 20,
                Integer.MAX_VALUE, maxTokens, 600);
        String prompt = String.join(" ", java.util.Collections.nCopies(promptWords, "the")).replaceFirst("the", "Once upon a time");
        HttpClient http = HttpClient.newHttpClient();
        if (adapters == null) {
            Gpt gpt = model != null ? Checkpoint.load(model) : Gpt.init(GptConfig.preset(preset), 0);
            LoadedModel lm = new LoadedModel(model != null ? model.toString() : preset, new InferenceModel(gpt, type), Tokenizer.load(tokDir));
            System.out.printf(Locale.ROOT, "model %s (%s), %,d parameters; prompt %d words, %d tokens per completion, greedy%n",
                    lm.name(), dtype, gpt.parameterCount(), promptWords, maxTokens);
            header(false);
            try (WaferServer server = new WaferServer(lm, cfg)) {
                table(http, server, prompt, List.of(""), null);
            }
            return 0;
        }
        Path tmp = Files.createTempDirectory("wafer-bench-adapters");
        try {
            Path base = model;
            if (base == null) { // a preset's random weights, saved so that they map as a checkpoint does
                base = tmp.resolve("base");
                Checkpoint.save(Gpt.init(GptConfig.preset(preset), 0), base);
            }
            int most = adapters.stream().filter(a -> !a.equals("merged")).mapToInt(BenchServeCommand::count).max().orElse(1);
            List<Path> dirs = saveAdapters(base, tmp, most);
            System.out.printf(Locale.ROOT, "model %s (%s); LoRA r=%d on %s; prompt %d words, %d tokens per completion, greedy%n",
                    model != null ? model : preset, dtype, loraR, loraTargets, promptWords, maxTokens);
            header(true);
            for (String a : adapters) {
                if (a.equals("merged")) {
                    try (WaferServer server = WaferServer.open(base, dirs.getFirst(), tokDir, null, type, cfg)) {
                        table(http, server, prompt, List.of(""), "1 merged");
                    }
                    continue;
                }
                Map<String, Path> named = new LinkedHashMap<>();
                for (int i = 0; i < count(a); i++) named.put("a" + i, dirs.get(i));
                try (WaferServer server = WaferServer.open(base, named, null, tokDir, null, type, cfg)) {
                    table(http, server, prompt, List.copyOf(named.keySet()), count(a) + " unmerged");
                }
            }
        } finally {
            AtomicFiles.deleteTree(tmp);
        }
        return 0;
    }

    private static int count(String a) {
        try {
            int n = Integer.parseInt(a);
            if (n >= 1) return n;
        } catch (NumberFormatException e) { /* below */ }
        throw new WaferException("--adapters " + a + ": give 'merged' or a count of adapters (1 or more)");
    }

    /** n LoRA adapters for base, their tensors random (B too, so each changes the model), saved under tmp. */
    private List<Path> saveAdapters(Path base, Path tmp, int n) {
        Gpt gpt = Checkpoint.loadFrozen(base);
        String fp = Fingerprint.of(gpt);
        Peft.Spec spec = new Peft.Spec(Peft.Kind.LORA, new Lora.Config(loraR, 2f * loraR, 0f, loraTargets), 0, 0, 0);
        Method m = Peft.apply(gpt, spec, 0);
        FineTuned ft = new FineTuned(gpt, Task.CAUSAL_LM, List.of(), spec, m, null, gpt.config.vocabSize() - 1, fp);
        List<Path> dirs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            SplittableRandom r = new SplittableRandom(i);
            for (Parameter p : m.tensors().values()) for (int j = 0; j < p.size(); j++) p.data[p.off + j] = (float) (r.nextGaussian() * 0.02);
            Path d = tmp.resolve("adapter-" + i);
            ft.save(d, base.toString());
            dirs.add(d);
        }
        return dirs;
    }

    private static void header(boolean adapters) {
        System.out.println((adapters ? "| adapters " : "") + "| streams | aggregate tok/s | per-stream tok/s | first token p50 ms | first token max ms | completion tokens |");
        System.out.println((adapters ? "|---" : "") + "|---|---|---|---|---|---|");
    }

    /**
     * A row per stream count (label: the adapters column, null for none); stream i asks for models[i % size] (""
     * is the server's own).
     */
    private void table(HttpClient http, WaferServer server, String prompt, List<String> models, String label) throws Exception {
        int maxBatch = streams.stream().mapToInt(Integer::intValue).max().orElse(1);
        // warm-up: the JIT (decode kernels for batch 1 and for batches), thread pools, connections; one round
        // of each left the first measured round 30-40% slow
        for (int w = 0; w < 2; w++) {
            round(http, server.url(), prompt, 1, models);
            round(http, server.url(), prompt, maxBatch, models);
        }
        for (int n : streams) {
            Result r = null;
            for (int k = 0; k < rounds; k++) {
                Result x = round(http, server.url(), prompt, n, models);
                if (r == null || x.tokens / x.seconds > r.tokens / r.seconds) r = x;
            }
            System.out.printf(Locale.ROOT, "%s| %d | %.1f | %.1f | %.0f | %.0f | %d |%n", label == null ? "" : "| " + label + " ", n,
                    r.tokens / r.seconds, r.perStream, r.ttftP50 * 1e3, r.ttftMax * 1e3, r.tokens);
        }
    }

    private record Result(long tokens, double seconds, double perStream, double ttftP50, double ttftMax) {}

    private record Stream(long tokens, double firstToken, double seconds) {}

    /** n streaming completions sent at once; the round lasts from the first send to the last [DONE]. */
    private Result round(HttpClient http, String url, String prompt, int n, List<String> models) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            long t0 = System.nanoTime();
            List<Future<Stream>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String body = JSON.createObjectNode().put("model", models.get(i % models.size())).put("prompt", prompt).put("max_tokens", maxTokens)
                        .put("temperature", 0).put("stream", true).toString();
                fs.add(pool.submit(() -> stream(http, url, body)));
            }
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
