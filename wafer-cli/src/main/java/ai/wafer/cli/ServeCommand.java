package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.generate.WeightType;
import ai.wafer.serve.WaferServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code wafer serve}: an OpenAI-compatible HTTP server with continuous batching and a chat page at /. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over HTTP: /v1/completions, /v1/chat/completions (stream: true for SSE), /v1/embeddings, /v1/classify or /v1/tag for a fine-tuned classifier, /v1/models, /health, /metrics, and a page at / (a chat for a language model, a classification or tagging form for a classifier).")
public final class ServeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR") Path model;
    @Option(names = "--adapter", paramLabel = "[NAME=]DIR", description = "an adapter for --model (the base model). DIR alone: the one model served; a classification adapter is served with its head, a causal-LM LoRA or (IA)3 adapter is merged into the weights, a prefix goes in front of every sequence. NAME=DIR, repeatable: many LoRA or (IA)3 adapters over one copy of the base, unmerged, each chosen by a request's model NAME (the base's own name: no adapter); rows of different adapters decode in one batch") List<String> adapterArgs;
    @Option(names = "--adapter-root", paramLabel = "DIR", description = "allow POST /v1/adapters {\"name\", \"path\"} to load adapters from directories under DIR (and DELETE /v1/adapters/NAME to unload); with the API key when one is set") Path adapterRoot;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer directory (default: the model's)") Path tokenizer;
    @Option(names = "--chat-template", paramLabel = "FILE", description = "a Jinja chat template for /v1/chat/completions (default: the tokenizer_config.json's chat_template, else the built-in ### Role: format)") Path chatTemplate;
    @Option(names = "--dtype", description = "fp32, bf16 or int8 (default: fp32, or int8 as stored for a model file stored int8)") String dtype;
    @Option(names = "--group-size", defaultValue = "0", paramLabel = "G", description = "with --dtype int8: a scale per output channel and group of G inputs (32, 64, 128; 0 = one per channel; default ${DEFAULT-VALUE}); an int8 model file is used as stored") int groupSize;
    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on (default: ${DEFAULT-VALUE})") String host;
    @Option(names = "--port", defaultValue = "8000", description = "(default: ${DEFAULT-VALUE}; 0 picks a free one)") int port;
    @Option(names = "--api-key", description = "require 'Authorization: Bearer KEY' (default: $WAFER_API_KEY, else none; visible in ps: prefer --api-key-file)") String apiKey;
    @Option(names = "--api-key-file", paramLabel = "FILE", description = "read the key from the first line of FILE") Path apiKeyFile;
    @Option(names = "--max-batch", defaultValue = "16", description = "sequences decoded together (default: ${DEFAULT-VALUE})") int maxBatch;
    @Option(names = "--max-queue", defaultValue = "64", description = "requests waiting beyond the batch before 429 (default: ${DEFAULT-VALUE})") int maxQueue;
    @Option(names = "--max-body-bytes", defaultValue = "1048576", description = "(default: ${DEFAULT-VALUE})") long maxBody;
    @Option(names = "--max-prompt-tokens", defaultValue = "0", description = "0 = the model's context") int maxPrompt;
    @Option(names = "--max-tokens", defaultValue = "1024", description = "largest max_tokens a request may ask (default: ${DEFAULT-VALUE})") int maxTokens;

    @Override public Integer call() throws InterruptedException, IOException {
        var cfg = config();
        Map<String, Path> named = new LinkedHashMap<>();
        Path adapter = null;
        for (String a : adapterArgs == null ? List.<String>of() : adapterArgs) {
            int eq = a.indexOf('=');
            if (eq < 0 && adapterArgs.size() == 1 && adapterRoot == null) adapter = Path.of(a);
            else if (eq <= 0) throw new WaferException("--adapter " + a + ": give NAME=DIR when serving several adapters or with --adapter-root");
            else if (named.put(a.substring(0, eq), Path.of(a.substring(eq + 1))) != null) throw new WaferException("--adapter: the name '" + a.substring(0, eq) + "' is given twice");
        }
        // a fine-tuned sequence- or token-classification model serves /v1/classify or /v1/tag instead of completions
        WeightType type = WeightType.parse(dtype, groupSize, model);
        WaferServer s = named.isEmpty() && adapterRoot == null ? WaferServer.open(model, adapter, tokenizer, chatTemplate, type, cfg)
                : WaferServer.open(model, named, adapterRoot, tokenizer, chatTemplate, type, cfg);
        System.err.println("wafer serve: " + s.describe() + " (" + type.name().toLowerCase() + ") on " + s.url() + (cfg.apiKey() != null ? " (API key required)" : ""));
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> { s.close(); stop.countDown(); }));
        stop.await();
        return 0;
    }

    /** The server's settings from the options, checked before the model is loaded. */
    WaferServer.Config config() throws IOException {
        if (maxBatch < 1 || maxQueue < 1 || maxBody < 1 || maxTokens < 1 || maxPrompt < 0)
            throw new IllegalArgumentException("--max-batch, --max-queue, --max-body-bytes and --max-tokens must be positive");
        if (port < 0 || port > 65535) throw new WaferException("--port " + port + " is not a port number (0 to 65535; 0 picks a free one)");
        if (apiKey != null && apiKeyFile != null) throw new WaferException("give --api-key or --api-key-file, not both");
        String key = apiKey != null ? apiKey : System.getenv("WAFER_API_KEY");
        if (apiKeyFile != null) {
            if (!Files.isRegularFile(apiKeyFile)) throw new WaferException("--api-key-file " + apiKeyFile + ": no such file");
            key = Files.readString(apiKeyFile).lines().findFirst().orElse("").strip();
            if (key.isEmpty()) throw new WaferException("--api-key-file " + apiKeyFile + ": the file is empty (its first line is the key)");
        }
        return new WaferServer.Config(host, port, key == null || key.isEmpty() ? null : key, maxBatch, maxQueue, maxBody,
                maxPrompt == 0 ? Integer.MAX_VALUE : maxPrompt, maxTokens, 600);
    }
}
