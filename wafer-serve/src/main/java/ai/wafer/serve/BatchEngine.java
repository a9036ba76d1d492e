package ai.wafer.serve;

import ai.wafer.WaferException;
import ai.wafer.model.KvCache;
import ai.wafer.peft.MixedAdapters;
import ai.wafer.generate.FinishReason;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.SamplingParams;
import ai.wafer.generate.Sequence;
import ai.wafer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Continuous batching: one thread owns the model and decodes every running request together, one
 * token each per step. New requests wait in a bounded queue and join between steps (after their
 * prompt is prefilled); finished or abandoned ones leave. Each request receives its tokens through
 * its own event queue, which the HTTP thread serving it drains.
 */
final class BatchEngine implements AutoCloseable {
    sealed interface Event permits Delta, Done, Failed {}
    /** New text, and (when asked) the log-probability of the token that made it (its text may still be empty: a partial character). */
    record Delta(String text, Sequence.Logprob logprob) implements Event {}
    record Done(FinishReason reason, int promptTokens, int completionTokens) implements Event {}
    record Failed(String message) implements Event {}

    /** One request: what to generate, where its events go; {@code cancelled} when the client left. */
    static final class Job {
        final int[] prompt;
        final SamplingParams params;
        final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        final long submitted = System.nanoTime();
        volatile boolean cancelled;
        /** Set by the engine's thread when this request failed alone. */
        boolean failed;
        volatile long firstToken;
        Sequence seq;
        /** Top alternatives to report with each token's log-probability; -1: none. */
        int logprobs = -1;
        /** The adapter this request decodes with (null: the base); held until it ends, so an unloaded adapter's requests finish. */
        final MixedAdapters.Adapter adapter;

        Job(int[] prompt, SamplingParams params, MixedAdapters.Adapter adapter) {
            this.prompt = prompt;
            this.params = params;
            this.adapter = adapter;
        }
    }

    private final InferenceModel model;
    private final Tokenizer tok;
    private final int maxBatch;
    private final BlockingQueue<Job> queue;
    private final Metrics metrics;
    private final Thread thread;
    private volatile boolean running = true;
    private volatile int activeCount;

    BatchEngine(InferenceModel model, Tokenizer tok, int maxBatch, int maxQueue, Metrics metrics) {
        this.model = model;
        this.tok = tok;
        this.maxBatch = maxBatch;
        this.queue = new ArrayBlockingQueue<>(maxQueue);
        this.metrics = metrics;
        thread = new Thread(this::loop, "wafer-batch-engine");
        thread.setDaemon(true);
        thread.start();
    }

    /** False when the queue is full (the caller answers 429). */
    boolean submit(Job j) { return queue.offer(j); }

    int queued() { return queue.size(); }

    int active() { return activeCount; }

    private void loop() {
        List<Job> active = new ArrayList<>();
        int V = model.vocabSize();
        float[] logits = new float[maxBatch * V];
        KvCache[] caches = new KvCache[maxBatch];
        MixedAdapters.Adapter[] adapters = new MixedAdapters.Adapter[maxBatch];
        int[] last = new int[maxBatch];
        while (running) {
            try {
                if (active.isEmpty()) {
                    Job j = queue.poll(200, TimeUnit.MILLISECONDS);
                    if (j == null) continue;
                    admit(j, active, logits);
                }
                Job j;
                while (active.size() < maxBatch && (j = queue.poll()) != null) admit(j, active, logits);
                active.removeIf(x -> {
                    if (!x.cancelled) return false;
                    metrics.errors.incrementAndGet();
                    return true;
                });
                activeCount = active.size();
                int n = active.size();
                if (n == 0) continue;
                long t = System.nanoTime();
                for (int i = 0; i < n; i++) { caches[i] = active.get(i).seq.cache(); last[i] = active.get(i).seq.last(); adapters[i] = active.get(i).adapter; }
                model.decode(caches, last, n, logits, adapters); // rows of different adapters in one step
                java.util.Arrays.fill(adapters, 0, n, null); // an unloaded adapter is kept by its own requests only
                // each row picks its own token: one row's failure (NaN logits, say) ends that request only
                for (int i = 0; i < n; i++) {
                    Job x = active.get(i);
                    try {
                        x.seq.accept(logits, i * V);
                    } catch (RuntimeException e) {
                        fail(x, e);
                    }
                }
                metrics.busyNanos.addAndGet(System.nanoTime() - t);
                metrics.decodeSteps.incrementAndGet();
                active.removeIf(x -> x.failed || x.seq.done() && finish(x));
                activeCount = active.size();
            } catch (InterruptedException e) {
                break;
            } catch (RuntimeException e) {
                // a failure of the shared step itself is not any one request's fault: fail them all and carry on
                for (Job x : active) x.events.add(new Failed("generation failed: " + e));
                active.clear();
                activeCount = 0;
            }
        }
    }

    /** Prefills a new request and adds it to the batch (or finishes it at once). */
    private void admit(Job j, List<Job> active, float[] logits) {
        if (j.cancelled) return;
        try {
            long t = System.nanoTime();
            j.seq = new Sequence(model, tok, j.prompt, j.params, j.adapter, (token, text) -> {
                if (j.firstToken == 0) j.firstToken = System.nanoTime();
                if (token >= 0) metrics.generatedTokens.incrementAndGet();
                if (token >= 0 && j.logprobs >= 0) j.events.add(new Delta(text, j.seq.lastLogprob()));
                else if (!text.isEmpty()) j.events.add(new Delta(text, null));
            });
            if (j.logprobs >= 0) j.seq.wantLogprobs(j.logprobs);
            j.seq.prefill(logits);
            metrics.busyNanos.addAndGet(System.nanoTime() - t);
            metrics.promptTokens.addAndGet(j.prompt.length);
            if (j.seq.done()) finish(j); else active.add(j);
        } catch (RuntimeException e) {
            fail(j, e);
        }
    }

    /** Ends one request with an error; the loop drops it from the batch. */
    private void fail(Job j, RuntimeException e) {
        j.failed = true;
        metrics.errors.incrementAndGet();
        j.events.add(new Failed("generation failed: " + (e instanceof WaferException ? e.getMessage() : e.toString())));
    }

    private boolean finish(Job j) {
        long now = System.nanoTime();
        metrics.finished((now - j.submitted) / 1e9, ((j.firstToken == 0 ? now : j.firstToken) - j.submitted) / 1e9);
        j.events.add(new Done(j.seq.finishReason(), j.prompt.length, j.seq.generated().length));
        return true;
    }

    @Override public void close() {
        running = false;
        thread.interrupt();
        try { thread.join(5000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        Job j;
        while ((j = queue.poll()) != null) j.events.add(new Failed("the server is shutting down"));
    }
}
