package ai.wafer.serve;

import ai.wafer.WaferException;
import ai.wafer.eval.EntitySpans;
import ai.wafer.model.Task;
import ai.wafer.generate.LoadedModel;
import ai.wafer.generate.Sequence;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.security.RouteRole;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.util.BufferUtil;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The HTTP server: OpenAI's completions, chat completions and models endpoints (streaming as
 * server-sent events), classification and tagging endpoints, health, metrics and a chat page at
 * {@code /}. Generation runs in one {@link BatchEngine}; HTTP threads (virtual) only parse, wait
 * for events and write them.
 */
public final class WaferServer implements AutoCloseable {
    /** Server settings; apiKey null means no authentication. */
    public record Config(String host, int port, String apiKey, int maxBatch, int maxQueue, long maxBodyBytes,
                         int maxPromptTokens, int maxTokens, long requestTimeoutSeconds) {
        public static Config defaults(String host, int port) {
            return new Config(host, port, null, 16, 64, 1 << 20, Integer.MAX_VALUE, 1024, 600);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    /** The model served: its name in responses. */
    private final String name;
    /** The language model behind the completions endpoints, or null for a classifier. */
    private final LoadedModel lm;
    /** The fine-tuned classifier behind /v1/classify or /v1/tag, or null for a language model. */
    private final Classifier cls;
    /** The adapters served over the base {@code lm}, chosen by a request's model, or null: one model only. */
    private final Adapters adapters;
    private final Config cfg;
    private final Metrics metrics = new Metrics();
    /** Generation's batch engine and request limits; null for a classifier, which generates nothing. */
    private final BatchEngine engine;
    private final OpenAiRequests.Limits limits;
    private final Javalin app;
    private final long created = System.currentTimeMillis() / 1000;
    /** Classification requests admitted: one running (the model takes one text at a time) and up to maxQueue waiting, beyond which 429, as for generation. */
    private final Semaphore classifierSlots;
    /** How often a non-streaming request looks whether its client is still there. */
    private static final long PROBE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    /** Routes anyone may use; every other route needs the API key (routes, not path strings: Jetty and Javalin decide the match). */
    private enum Access implements RouteRole { OPEN }

    /** A language-model server: completions and chat completions. */
    public WaferServer(LoadedModel lm, Config cfg) { this(lm, null, null, cfg); }

    /** A classification server: /v1/classify or /v1/tag answer from {@code cls} and completions are refused. */
    public WaferServer(Classifier cls, Config cfg) { this(null, cls, null, cfg); }

    /**
     * One base ({@code model}) and many adapters over it, unmerged, each chosen by a request's model ({@code adapters}:
     * name to directory); with {@code adapterRoot}, more load and unload while it runs (POST and DELETE /v1/adapters).
     * Causal-LM adapters generate, mixed in one decoding batch; classification adapters answer /v1/classify or /v1/tag.
     */
    public static WaferServer open(java.nio.file.Path model, Map<String, java.nio.file.Path> adapters, java.nio.file.Path adapterRoot,
                                   java.nio.file.Path tokenizer, java.nio.file.Path chatTemplate, ai.wafer.generate.WeightType type, Config cfg) {
        LoadedModel lm = LoadedModel.mixing(model, tokenizer, type).withChatTemplate(chatTemplate, tokenizer != null ? tokenizer : model);
        Adapters set = new Adapters(model, lm.name(), lm.model(), lm.tokenizer(), adapterRoot);
        adapters.forEach((n, dir) -> {
            try {
                set.load(n, dir);
            } catch (WaferException e) {
                throw new WaferException("--adapter " + n + "=" + dir + ": " + e.getMessage(), e);
            }
        });
        return new WaferServer(lm, null, set, cfg);
    }

    /**
     * The server for {@code model} (with {@code adapter}): a classifier if it is a fine-tuned one, else a language model
     * (chatting with {@code chatTemplate}'s Jinja template when not null, else the model's own or the built-in one).
     */
    public static WaferServer open(java.nio.file.Path model, java.nio.file.Path adapter, java.nio.file.Path tokenizer,
                                   java.nio.file.Path chatTemplate, ai.wafer.generate.WeightType type, Config cfg) {
        if (Classifier.isClassifier(model, adapter)) {
            if (chatTemplate != null) throw new WaferException("--chat-template: " + (adapter != null ? adapter : model) + " is a classifier; it does not chat");
            return new WaferServer(Classifier.load(model, adapter, tokenizer), cfg);
        }
        return new WaferServer(LoadedModel.load(model, adapter, tokenizer, type).withChatTemplate(chatTemplate, tokenizer != null ? tokenizer : model), cfg);
    }

    /** What is served: the model's name, and the task for a classifier. */
    public String describe() {
        if (adapters != null) return name + " with adapters " + adapters.all().stream().map(a -> a.name() + " (" + a.task() + ")").toList();
        return cls != null ? cls.name + " (" + cls.task() + ")" : name;
    }

    private WaferServer(LoadedModel lm, Classifier cls, Adapters adapters, Config cfg) {
        this.lm = lm;
        this.cls = cls;
        this.adapters = adapters;
        this.cfg = cfg;
        this.name = lm != null ? lm.name() : cls.name;
        limits = lm == null ? null
                : new OpenAiRequests.Limits(lm.model().contextLength(), lm.model().vocabSize(), cfg.maxPromptTokens(), cfg.maxTokens());
        engine = lm == null ? null : new BatchEngine(lm.model(), lm.tokenizer(), cfg.maxBatch(), cfg.maxQueue(), metrics);
        classifierSlots = new Semaphore(cfg.maxQueue() + 1);
        app = Javalin.create(c -> {
            c.showJavalinBanner = false;
            c.useVirtualThreads = true;
            c.http.disableCompression();
            c.http.maxRequestSize = cfg.maxBodyBytes();
        });
        app.beforeMatched(c -> {
            if (c.routeRoles().contains(Access.OPEN)) return;
            metrics.requests.incrementAndGet();
            if (cfg.apiKey() != null) authorize(c);
        });
        app.get("/", c -> c.contentType("text/html; charset=utf-8").result(page(cls == null ? "index.html" : "classify.html")), Access.OPEN);
        if (adapters != null) app.get("/classify", c -> c.contentType("text/html; charset=utf-8").result(page("classify.html")), Access.OPEN);
        app.get("/health", c -> c.json(obj().put("status", "ok").put("model", name)
                .put("queued", queued()).put("active", active())), Access.OPEN);
        app.get("/metrics", c -> metrics.answer(c, queued(), active()));
        app.get("/v1/models", c -> {
            ObjectNode o = obj().put("object", "list");
            var data = o.putArray("data").add(model());
            if (adapters != null) for (Adapters.Served a : adapters.all()) data.add(model(a));
            c.json(o);
        });
        app.get("/v1/models/{id}", c -> {
            Adapters.Served a = target(c.pathParam("id"));
            c.json(a == null ? model() : model(a));
        });
        app.post("/v1/adapters", this::loadAdapter);
        app.delete("/v1/adapters/{name}", c -> {
            String n = c.pathParam("name");
            if (adapters == null || !adapters.unload(n))
                throw new ApiException(404, "no adapter named '" + n + "' is loaded (see /v1/models)", "name", "model_not_found");
            c.json(obj().put("id", n).put("object", "model").put("deleted", true)); // requests using it finish with it
        });
        app.post("/v1/completions", c -> generate(c, false));
        app.post("/v1/chat/completions", c -> generate(c, true));
        app.post("/v1/embeddings", this::embeddings);
        app.post("/v1/classify", this::classify);
        app.post("/v1/tag", this::tag);
        app.exception(ApiException.class, (e, c) -> error(c, e));
        app.exception(Exception.class, (e, c) -> {
            metrics.errors.incrementAndGet();
            error(c, new ApiException(500, "internal error: " + e, null, null));
        });
        app.error(404, c -> { if (c.result() == null || !c.result().contains("\"error\"")) error(c, new ApiException(404, "no route " + c.method() + " " + c.path(), null, "not_found")); });
        app.error(405, c -> error(c, new ApiException(405, "method " + c.method() + " not allowed on " + c.path(), null, "method_not_allowed")));
        try {
            app.start(cfg.host(), cfg.port());
        } catch (RuntimeException e) { // the port is taken, out of range, or the host unknown
            close();
            Throwable root = e;
            while (root.getCause() != null) root = root.getCause();
            throw new WaferException("cannot listen on " + cfg.host() + ":" + cfg.port() + ": "
                    + (root.getMessage() != null ? root.getMessage() : root.toString()), e);
        }
    }

    private int classifying() { return cfg.maxQueue() + 1 - classifierSlots.availablePermits(); }

    private int queued() { return engine != null ? engine.queued() : Math.max(0, classifying() - 1); }

    private int active() { return engine != null ? engine.active() : Math.min(1, classifying()); }

    private ApiException busy() {
        return new ApiException(429, "the server is busy (" + cfg.maxQueue() + " requests queued); retry later", null, "queue_full");
    }

    /** Runs one classification request in a free slot, or refuses it with 429. */
    private void admitted(Runnable work) {
        if (!classifierSlots.tryAcquire()) throw busy();
        try {
            work.run();
        } finally {
            classifierSlots.release();
        }
    }

    /** The port listened on (useful with port 0). */
    public int port() { return app.port(); }

    public String url() { return "http://" + cfg.host() + ":" + port(); }

    private ObjectNode model() {
        ObjectNode m = obj().put("id", name).put("object", "model").put("created", created).put("owned_by", "wafer");
        return cls == null ? m : m.put("task", cls.task().cliName); // what the page at / offers
    }

    /** An adapter in /v1/models: its base as parent (as vLLM lists LoRA modules), its task when it classifies. */
    private ObjectNode model(Adapters.Served a) {
        ObjectNode m = obj().put("id", a.name()).put("object", "model").put("created", created).put("owned_by", "wafer")
                .put("parent", name).put("root", a.dir().getFileName() == null ? a.name() : a.dir().getFileName().toString());
        return a.classifier() == null ? m : m.put("task", a.task().cliName);
    }

    /**
     * The model a request names: null for this server's own (no model, an empty one, or its name), else a loaded
     * adapter; anything else is OpenAI's 404 model_not_found.
     */
    private Adapters.Served target(String model) {
        if (model.isEmpty() || model.equals(name)) return null;
        Adapters.Served a = adapters == null ? null : adapters.get(model);
        if (a == null)
            throw new ApiException(404, "The model '" + model + "' does not exist (this server serves '" + name + "'"
                    + (adapters != null ? " and its adapters" : "") + ", see /v1/models)", "model", "model_not_found");
        return a;
    }

    private static String modelField(ObjectNode b) { return b.path("model").isTextual() ? b.get("model").asText() : ""; }

    /** POST /v1/adapters {"name", "path"}: loads the adapter under --adapter-root at path as name (201), or says why not. */
    private void loadAdapter(Context c) throws IOException {
        ObjectNode b = body(c);
        for (var it = b.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!f.equals("name") && !f.equals("path")) throw new ApiException(400, "Unrecognized request argument supplied: " + f, f, "unknown_parameter");
        }
        if (!b.path("name").isTextual() || !b.path("path").isTextual()) throw ApiException.bad("give name and path, both strings", b.path("name").isTextual() ? "path" : "name");
        if (adapters == null)
            throw new ApiException(403, "this server serves one model; start it with --adapter-root DIR (and --adapter NAME=DIR) to load adapters", "path", "adapter_loading_disabled");
        java.nio.file.Path dir = adapters.underRoot(b.get("path").asText());
        String n = b.get("name").asText();
        if (adapters.get(n) != null || n.equals(name)) throw new ApiException(409, "the model '" + n + "' exists already (DELETE /v1/adapters/" + n + " first)", "name", "model_exists");
        Adapters.Served a;
        try {
            a = adapters.load(n, dir);
        } catch (WaferException e) { // not an adapter, another base's, a method that cannot be mixed, a bad name
            throw new ApiException(400, "cannot load '" + b.get("path").asText() + "': " + e.getMessage().replace(dir.toString(), b.get("path").asText()), "path", "invalid_adapter");
        }
        c.status(201).json(model(a));
    }

    private void authorize(Context c) {
        String h = c.header("Authorization");
        String want = "Bearer " + cfg.apiKey();
        if (h == null || !MessageDigest.isEqual(h.getBytes(StandardCharsets.UTF_8), want.getBytes(StandardCharsets.UTF_8)))
            throw new ApiException(401, h == null ? "missing API key: send 'Authorization: Bearer <key>'" : "incorrect API key", null, "invalid_api_key");
    }

    private void error(Context c, ApiException e) {
        if (e.status >= 400 && e.status != 401) metrics.errors.incrementAndGet();
        ObjectNode err = obj();
        err.putObject("error").put("message", e.getMessage()).put("type", e.type).put("param", e.param).put("code", e.code); // a null is JSON null
        c.status(e.status).contentType("application/json").result(err.toString());
    }

    /** Reads at most maxBodyBytes and parses a JSON object. */
    private ObjectNode body(Context c) throws IOException {
        long declared = c.req().getContentLengthLong(); // contentLength() is an int: -1 past 2 GB, and the read would wait for it
        if (declared > cfg.maxBodyBytes()) throw new ApiException(413, "request body of " + declared + " bytes exceeds the limit of " + cfg.maxBodyBytes(), null, "request_too_large");
        byte[] bytes;
        try (InputStream in = c.req().getInputStream()) {
            bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, cfg.maxBodyBytes() + 1));
        }
        if (bytes.length > cfg.maxBodyBytes()) throw new ApiException(413, "request body exceeds the limit of " + cfg.maxBodyBytes() + " bytes", null, "request_too_large");
        JsonNode n;
        try {
            n = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw ApiException.bad("We could not parse the JSON body of your request: " + e.getOriginalMessage(), null);
        }
        if (n == null || !n.isObject()) throw ApiException.bad("the request body must be a JSON object", null);
        return (ObjectNode) n;
    }

    /** The texts of {@code {"input": "text" | ["t1", ...]}}; checked before the head so bad input is a 400 on any model. */
    private List<String> inputs(ObjectNode b, Task needs, Classifier k, String model) {
        onlyFields(b, "input");
        JsonNode in = b.get("input");
        List<String> texts = new ArrayList<>();
        if (in != null && in.isTextual()) texts.add(in.asText());
        else if (in != null && in.isArray() && !in.isEmpty()) for (JsonNode x : in) {
            if (!x.isTextual()) throw ApiException.bad("input must be a string or an array of strings", "input");
            texts.add(x.asText());
        }
        else throw ApiException.bad("input must be a string or a non-empty array of strings", "input");
        for (int i = 0; i < texts.size(); i++)
            if (texts.get(i).isBlank()) throw ApiException.bad("input[" + i + "] is empty", "input");
        needHead(needs, k, model);
        return texts;
    }

    /** Fields a request may carry: {@code field}, model and user; anything else is OpenAI's unknown_parameter. */
    private static void onlyFields(ObjectNode b, String field) {
        for (var it = b.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!f.equals(field) && !f.equals("model") && !f.equals("user"))
                throw new ApiException(400, "Unrecognized request argument supplied: " + f, f, "unknown_parameter");
        }
    }

    private static void needHead(Task needs, Classifier k, String model) {
        if (k == null || k.task() != needs)
            throw new ApiException(400, "model " + model + " has no " + (needs == Task.SEQUENCE_CLASSIFICATION ? "sequence" : "token")
                    + "-classification head: this endpoint needs a model fine-tuned with --task " + needs
                    + (k != null ? " (this one is a " + k.task() + " model)" : ""), "model", "model_not_supported");
    }

    /**
     * The words to tag: {@code {"input": text | [texts]}} split by {@link Classifier#words}, or words already split,
     * {@code {"tokens": ["Paris", ",", ...]}} for one text or {@code {"tokens": [[...], [...]]}} for several.
     */
    private List<List<String>> tagWords(ObjectNode b, Classifier k, String model) {
        if (!b.has("tokens")) return inputs(b, Task.TOKEN_CLASSIFICATION, k, model).stream().map(Classifier::words).toList();
        if (b.has("input")) throw ApiException.bad("give either input (texts) or tokens (words already split), not both", "tokens");
        onlyFields(b, "tokens");
        JsonNode t = b.get("tokens");
        String shape = "tokens must be a non-empty array of words (strings), or an array of such arrays";
        if (!t.isArray() || t.isEmpty()) throw ApiException.bad(shape, "tokens");
        Iterable<JsonNode> rows = t.get(0).isArray() ? t : List.of(t);
        List<List<String>> out = new ArrayList<>();
        for (JsonNode row : rows) {
            if (!row.isArray() || row.isEmpty()) throw ApiException.bad(shape, "tokens");
            List<String> words = new ArrayList<>();
            for (JsonNode w : row) {
                if (!w.isTextual()) throw ApiException.bad(shape, "tokens");
                if (w.asText().isBlank()) throw ApiException.bad("tokens[" + out.size() + "] has an empty word", "tokens");
                words.add(w.asText());
            }
            out.add(words);
        }
        needHead(Task.TOKEN_CLASSIFICATION, k, model);
        return out;
    }

    /**
     * OpenAI's embeddings: {@code input} a text, a list of texts, a list of token ids or a list of such lists; each
     * embedding is {@link ai.wafer.generate.InferenceModel#embed}, as floats or (encoding_format base64) their
     * little-endian bytes.
     */
    private void embeddings(Context c) throws IOException {
        ObjectNode b = body(c);
        Adapters.Served t = target(modelField(b));
        if (t != null && t.classifier() != null) throw new ApiException(400, "model " + t.name() + " is a " + t.task() + " adapter; embeddings come from a language model", "model", "model_not_supported");
        if (cls != null) throw new ApiException(400, "model " + name + " is a " + cls.task() + " model; embeddings come from a language model", "model", "model_not_supported");
        for (var it = b.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!Set.of("input", "model", "encoding_format", "dimensions", "user").contains(f))
                throw new ApiException(400, "Unrecognized request argument supplied: " + f, f, "unknown_parameter");
        }
        String format = b.path("encoding_format").asText("float");
        if (!format.equals("float") && !format.equals("base64")) throw ApiException.bad("encoding_format must be float or base64", "encoding_format");
        int C = lm.model().config.nEmbd();
        if (b.hasNonNull("dimensions") && b.get("dimensions").asInt(-1) != C)
            throw ApiException.bad("this model's embeddings have " + C + " dimensions; others are not supported", "dimensions");
        JsonNode in = b.get("input");
        String shape = "input must be a text, a non-empty array of texts, an array of token ids, or an array of such arrays";
        if (in == null || !(in.isTextual() || in.isArray() && !in.isEmpty())) throw ApiException.bad(shape, "input");
        List<int[]> inputs = new ArrayList<>();
        Iterable<JsonNode> items = in.isTextual() || in.get(0).isIntegralNumber() ? List.of(in) : in;
        for (JsonNode x : items) {
            if (x.isTextual()) inputs.add(lm.requireTokenizer().encode(x.asText()));
            else if (x.isArray() && !x.isEmpty()) inputs.add(OpenAiRequests.tokenIds(x, lm.model().vocabSize(), "input"));
            else throw ApiException.bad(shape, "input");
            int n = inputs.getLast().length;
            if (n < 1 || n > lm.model().config.nPositions())
                throw new ApiException(400, "input " + (inputs.size() - 1) + " has " + n + " tokens; this model embeds 1 to "
                        + lm.model().config.nPositions(), "input", "context_length_exceeded");
        }
        ObjectNode o = obj().put("object", "list").put("model", t != null ? t.name() : name);
        var data = o.putArray("data");
        long tokens = inputs.stream().mapToLong(x -> x.length).sum();
        admitted(() -> {
            for (int i = 0; i < inputs.size(); i++) {
                float[] e = lm.model().embed(inputs.get(i), t != null ? t.adapter() : null);
                ObjectNode d = data.addObject().put("object", "embedding").put("index", i);
                if (format.equals("float")) { var a = d.putArray("embedding"); for (float v : e) a.add(v); }
                else {
                    java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(4 * e.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                    for (float v : e) bb.putFloat(v);
                    d.put("embedding", java.util.Base64.getEncoder().encodeToString(bb.array()));
                }
            }
        });
        o.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        c.json(o);
    }

    private void classify(Context c) throws IOException {
        ObjectNode b = body(c);
        JsonNode second = b.remove("text_pair"); // a sentence pair's second texts
        Adapters.Served t = target(modelField(b));
        Classifier cls = t != null ? t.classifier() : this.cls;
        List<String> texts = inputs(b, Task.SEQUENCE_CLASSIFICATION, cls, t != null ? t.name() : name), pairs = cls.pairs(second, texts.size());
        ObjectNode o = obj().put("object", "list").put("model", cls.name);
        var data = o.putArray("data");
        admitted(() -> {
            for (int i = 0; i < texts.size(); i++)
                cls.classify(texts.get(i), pairs == null ? null : pairs.get(i)).write(data.addObject().put("index", i));
        });
        c.json(o);
    }

    /** Tags per word ({@link #tagWords}); entities (word indices, end inclusive) only for IOB-style labels. */
    private void tag(Context c) throws IOException {
        ObjectNode b = body(c);
        Adapters.Served t = target(modelField(b));
        Classifier cls = t != null ? t.classifier() : this.cls;
        List<List<String>> texts = tagWords(b, cls, t != null ? t.name() : name);
        ObjectNode o = obj().put("object", "list").put("model", cls.name);
        var data = o.putArray("data");
        admitted(() -> {
            for (int i = 0; i < texts.size(); i++) {
                Classifier.Tagged r = cls.tag(texts.get(i));
                ObjectNode d = data.addObject().put("index", i);
                r.tokens().forEach(d.putArray("tokens")::add);
                r.tags().forEach(d.putArray("tags")::add);
                if (r.entities() == null) continue;
                var es = d.putArray("entities");
                for (EntitySpans.Entity e : r.entities())
                    es.addObject().put("type", e.type()).put("start", e.start()).put("end", e.end())
                            .put("text", String.join(" ", r.tokens().subList(e.start(), e.end() + 1)));
            }
        });
        c.json(o);
    }

    private void generate(Context c, boolean chat) throws IOException, InterruptedException {
        ObjectNode b = body(c);
        Adapters.Served t = target(modelField(b));
        if (t != null && t.classifier() != null)
            throw new ApiException(400, "model " + t.name() + " is a " + t.task() + " adapter: it does not generate text; use "
                    + (t.task() == Task.SEQUENCE_CLASSIFICATION ? "/v1/classify" : "/v1/tag"), "model", "model_not_supported");
        if (cls != null)
            throw new ApiException(400, "model " + name + " is a " + cls.task() + " model: it does not generate text; use "
                    + (cls.task() == Task.SEQUENCE_CLASSIFICATION ? "/v1/classify" : "/v1/tag"), "model", "model_not_supported");
        OpenAiRequests.Parsed p = chat ? OpenAiRequests.chat(b, lm.tokenizer(), lm.chat(), limits) : OpenAiRequests.completion(b, lm.tokenizer(), limits);
        if (p.n() > cfg.maxBatch())
            throw ApiException.bad("n is " + p.n() + ", more than this server decodes together (--max-batch " + cfg.maxBatch() + ")", "n");
        // n choices are n jobs of the same prompt, decoded together; with a seed, choice i samples from seed + i
        List<BatchEngine.Job> jobs = new ArrayList<>();
        for (int i = 0; i < p.n(); i++) {
            Long seed = p.params().seed();
            BatchEngine.Job job = new BatchEngine.Job(p.prompt(), seed == null ? p.params() : p.params().withSeed(seed + i), t != null ? t.adapter() : null);
            job.logprobs = p.logprobs();
            if (!engine.submit(job)) {
                for (BatchEngine.Job j : jobs) j.cancelled = true;
                throw busy();
            }
            jobs.add(job);
        }
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        long createdAt = System.currentTimeMillis() / 1000;
        String model = t != null ? t.name() : name;
        if (p.stream()) stream(c, jobs, chat, id, createdAt, model);
        else whole(c, jobs, chat, id, createdAt, model);
    }

    /**
     * The job's next event; or null when {@code client} (a non-streaming request, which writes nothing until the end;
     * null for a stream, whose writes fail when its client goes) has closed its connection: then the job is cancelled,
     * freeing its slot.
     */
    private BatchEngine.Event next(BatchEngine.Job job, Context client) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(cfg.requestTimeoutSeconds());
        for (long left; (left = deadline - System.nanoTime()) > 0; ) {
            BatchEngine.Event e = job.events.poll(client == null ? left : Math.min(left, PROBE_NANOS), TimeUnit.NANOSECONDS);
            if (client != null && gone(client)) { // one non-blocking read per token: microseconds against a decode step's milliseconds
                job.cancelled = true;
                return null;
            }
            if (e != null) return e;
        }
        job.cancelled = true;
        throw new ApiException(504, "generation timed out", null, "timeout");
    }

    /**
     * Whether the client of a request waiting for its answer has closed the connection. Jetty reads nothing from a
     * connection while its request is handled, so this reads without blocking: end of stream or an error means gone.
     * A byte read is a request pipelined behind this one, which cannot be put back: the connection is then closed
     * after this answer, as a server may close any connection (pipelined POSTs are rare). A client that half-closes
     * its side after sending, which HTTP clients do not do, reads as gone too.
     */
    private static boolean gone(Context c) {
        EndPoint ep = Request.getBaseRequest(c.req()).getHttpChannel().getEndPoint();
        try {
            int n = ep.fill(BufferUtil.allocate(64));
            if (n > 0) c.header("Connection", "close");
            return n < 0;
        } catch (IOException e) {
            return true;
        }
    }

    private void whole(Context c, List<BatchEngine.Job> jobs, boolean chat, String id, long createdAt, String model) throws InterruptedException {
        ObjectNode o = head(chat ? "chat.completion" : "text_completion", id, createdAt, model);
        var choices = o.putArray("choices");
        int prompt = 0, completion = 0;
        for (int i = 0; i < jobs.size(); i++) {
            StringBuilder text = new StringBuilder();
            List<Sequence.Logprob> lps = new ArrayList<>();
            BatchEngine.Done done = null;
            while (done == null) {
                switch (next(jobs.get(i), c)) {
                    case null -> { for (BatchEngine.Job j : jobs) j.cancelled = true; return; } // nobody to answer
                    case BatchEngine.Delta d -> { text.append(d.text()); if (d.logprob() != null) lps.add(d.logprob()); }
                    case BatchEngine.Failed f -> { for (BatchEngine.Job j : jobs) j.cancelled = true; throw new ApiException(500, f.message(), null, null); }
                    case BatchEngine.Done d -> done = d;
                }
            }
            ObjectNode ch = choices.addObject().put("index", i);
            if (chat) ch.putObject("message").put("role", "assistant").put("content", text.toString());
            else ch.put("text", text.toString());
            logprobs(ch, chat, jobs.get(i).logprobs >= 0 ? lps : null, 0);
            ch.put("finish_reason", done.reason().api);
            prompt = done.promptTokens();
            completion += done.completionTokens();
        }
        usage(o, prompt, completion);
        c.json(o);
    }

    /** Server-sent events; with n > 1 the choices' chunks interleave as their tokens come, each with its index. */
    private void stream(Context c, List<BatchEngine.Job> jobs, boolean chat, String id, long createdAt, String model) throws InterruptedException {
        c.status(200);
        c.res().setContentType("text/event-stream; charset=utf-8");
        c.res().setHeader("Cache-Control", "no-cache");
        c.res().setHeader("X-Accel-Buffering", "no");
        try {
            OutputStream out = c.res().getOutputStream();
            String object = chat ? "chat.completion.chunk" : "text_completion";
            if (chat) for (int i = 0; i < jobs.size(); i++) send(out, chunk(object, id, createdAt, model, i, chat, null, null, true));
            int left = jobs.size(), prompt = 0, completion = 0;
            boolean[] over = new boolean[jobs.size()];
            int[] offsets = new int[jobs.size()]; // text_offset of a completion's tokens
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(cfg.requestTimeoutSeconds());
            while (left > 0) {
                if (System.nanoTime() > deadline) throw new ApiException(504, "generation timed out", null, "timeout");
                for (int i = 0; i < jobs.size(); i++) {
                    if (over[i]) continue;
                    BatchEngine.Event e = jobs.get(i).events.poll(jobs.size() == 1 ? 100 : 5, TimeUnit.MILLISECONDS);
                    if (e instanceof BatchEngine.Delta d) {
                        ObjectNode ch = chunk(object, id, createdAt, model, i, chat, d.text(), null, false);
                        if (d.logprob() != null) logprobs((ObjectNode) ch.get("choices").get(0), chat, List.of(d.logprob()), offsets[i]);
                        offsets[i] += d.text().length();
                        send(out, ch);
                    }
                    else if (e instanceof BatchEngine.Failed f) {
                        ObjectNode err = obj();
                        err.putObject("error").put("message", f.message()).put("type", "server_error");
                        send(out, err);
                        over[i] = true;
                        left--;
                    } else if (e instanceof BatchEngine.Done d) {
                        prompt = d.promptTokens();
                        completion += d.completionTokens();
                        over[i] = true;
                        ObjectNode last = chunk(object, id, createdAt, model, i, chat, chat ? null : "", d.reason().api, false);
                        send(out, --left == 0 ? usage(last, prompt, completion) : last); // the usage of every choice, once
                    }
                }
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException gone) {
            for (BatchEngine.Job j : jobs) j.cancelled = true; // the client went away: stop spending steps on it
        } catch (ApiException timeout) {
            for (BatchEngine.Job j : jobs) j.cancelled = true;
        }
    }

    /**
     * OpenAI's logprobs of {@code lps} into a choice (null: none asked): for chat {content: [{token, logprob, bytes,
     * top_logprobs: [...]}]}, for completions {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}.
     */
    private void logprobs(ObjectNode ch, boolean chat, List<Sequence.Logprob> lps, int offset) {
        if (lps == null) { ch.putNull("logprobs"); return; }
        ObjectNode o = ch.putObject("logprobs");
        if (chat) {
            var content = o.putArray("content");
            for (Sequence.Logprob lp : lps) {
                ObjectNode t = token(content.addObject(), lp.token()).put("logprob", lp.logprob());
                var top = t.putArray("top_logprobs");
                for (int k = 0; k < lp.topTokens().length; k++) token(top.addObject(), lp.topTokens()[k]).put("logprob", lp.topLogprobs()[k]);
            }
            return;
        }
        var tokens = o.putArray("tokens");
        var values = o.putArray("token_logprobs");
        var tops = o.putArray("top_logprobs");
        var offsets = o.putArray("text_offset");
        for (Sequence.Logprob lp : lps) {
            String s = tokenText(lp.token());
            tokens.add(s);
            values.add(lp.logprob());
            ObjectNode top = tops.addObject();
            for (int k = 0; k < lp.topTokens().length; k++) top.put(tokenText(lp.topTokens()[k]), lp.topLogprobs()[k]);
            offsets.add(offset);
            offset += s.length();
        }
    }

    private ObjectNode token(ObjectNode o, int id) {
        o.put("token", tokenText(id));
        var bytes = o.putArray("bytes");
        if (lm.tokenizer() != null) for (byte b : lm.tokenizer().bytes(id)) bytes.add(b & 0xFF);
        return o;
    }

    private String tokenText(int id) { return lm.tokenizer() == null ? Integer.toString(id) : lm.tokenizer().decode(new int[] {id}); }

    private ObjectNode chunk(String object, String id, long createdAt, String model, int index, boolean chat, String text, String finish, boolean roleOnly) {
        ObjectNode o = head(object, id, createdAt, model);
        ObjectNode ch = o.putArray("choices").addObject().put("index", index);
        if (chat) {
            ObjectNode delta = ch.putObject("delta");
            if (roleOnly) delta.put("role", "assistant").put("content", "");
            else if (text != null) delta.put("content", text);
        } else {
            ch.put("text", text == null ? "" : text).putNull("logprobs");
        }
        ch.put("finish_reason", finish);
        return o;
    }

    private static ObjectNode usage(ObjectNode o, int prompt, int completion) {
        o.putObject("usage").put("prompt_tokens", prompt).put("completion_tokens", completion).put("total_tokens", prompt + completion);
        return o;
    }

    private ObjectNode head(String object, String id, long createdAt, String model) {
        return obj().put("id", id).put("object", object).put("created", createdAt).put("model", model);
    }

    private static void send(OutputStream out, JsonNode o) throws IOException {
        out.write(("data: " + o + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static ObjectNode obj() { return JSON.createObjectNode(); }

    /** The page at /: the chat page for a language model, a classification or tagging form for a classifier. */
    private static String page(String file) throws IOException {
        try (InputStream in = WaferServer.class.getResourceAsStream(file)) {
            if (in == null) return "<!doctype html><p>" + file + " missing from the build</p>";
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Override public void close() {
        app.stop();
        if (engine != null) engine.close();
    }

}
