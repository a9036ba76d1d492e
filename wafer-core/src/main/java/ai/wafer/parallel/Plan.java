package ai.wafer.parallel;

import ai.wafer.model.GptConfig;
import ai.wafer.model.WeightStream;

/**
 * What a layout costs each rank, before anything is rented: memory (parameters, gradients, AdamW
 * moments, activations) and bytes sent per optimiser step. fp32 throughout, as Wafer trains.
 *
 * <p>The formulas follow what Wafer allocates and sends: activations are the buffers of
 * {@code ai.wafer.model.Activations} (split by tp where the tensor is split: qkv, attention, MLP,
 * logits); traffic is counted with {@link Traffic}, as the communicators count it, so a run's
 * reported bytes can be checked against the plan. A pipeline stage s keeps min(K, pp - s) micro-batches
 * of activations in flight under 1F1B; the plan reports the most loaded stage (and, where the vocabulary
 * does not split evenly, the tensor rank with the larger slice).
 *
 * @param trainableFraction share of parameters that train (1 for full training; e.g. LoRA's few
 *                          percent): only those have gradients, moments and all-reduce traffic.
 * @param recompute         activation recomputation ({@code --recompute}): a micro-batch keeps each block's input and
 *                          one shared set of the other per-layer buffers instead of one set per layer.
 * @param frozenBytes       bytes a frozen parameter value takes: 4 (fp32), 2 (a bf16 base), 1 (int8, scales aside).
 */
public record Plan(GptConfig config, Layout layout, int batch, int seqLen, int gradAccum, boolean zero1,
                   double trainableFraction, boolean recompute, int frozenBytes, Stage worst) {

    /** One rank of stage {@code stage}: counts in floats (elements) and bytes sent per step. */
    public record Stage(int stage, int layers, long params, long trainable, long gradients, long optimizer,
                        long activations, long dpBytes, long tpBytes, long ppBytes, int frozenBytes) {
        public long memoryBytes() { return paramBytes() + 4 * (gradients + optimizer + activations); }
        /** The parameters' bytes: trainable ones float32, frozen ones {@link #frozenBytes} each. */
        public long paramBytes() { return 4 * trainable + frozenBytes * (params - trainable); }
        public long bytesPerStep() { return dpBytes + tpBytes + ppBytes; }
    }

    public static Plan of(GptConfig c, Layout l, int batch, int seqLen, int gradAccum, boolean zero1, double trainableFraction) {
        return of(c, l, batch, seqLen, gradAccum, zero1, trainableFraction, false);
    }

    public static Plan of(GptConfig c, Layout l, int batch, int seqLen, int gradAccum, boolean zero1, double trainableFraction,
                          boolean recompute) {
        return of(c, l, batch, seqLen, gradAccum, zero1, trainableFraction, recompute, 4);
    }

    public static Plan of(GptConfig c, Layout l, int batch, int seqLen, int gradAccum, boolean zero1, double trainableFraction,
                          boolean recompute, int frozenBytes) {
        if (batch % l.dp() != 0) throw new ai.wafer.WaferException("--batch-size " + batch + " must be a multiple of dp=" + l.dp());
        if (c.nLayer() < l.pp()) throw new ai.wafer.WaferException("pp=" + l.pp() + " needs at least as many layers; the model has " + c.nLayer());
        Stage worst = null;
        for (int s = 0; s < l.pp(); s++) {
            Stage st = stage(c, l, s, batch, seqLen, gradAccum, zero1, trainableFraction, recompute, frozenBytes);
            if (worst == null || st.memoryBytes() > worst.memoryBytes()) worst = st;
        }
        return new Plan(c, l, batch, seqLen, gradAccum, zero1, trainableFraction, recompute, frozenBytes, worst);
    }

    /** Layers of stage s: [s*L/pp, (s+1)*L/pp). */
    public static int firstLayer(int nLayer, int pp, int s) { return (int) ((long) nLayer * s / pp); }

    static long ceilDiv(long a, int b) { return (a + b - 1) / b; }

    static Stage stage(GptConfig c, Layout l, int s, int batch, int seqLen, int K, boolean zero1, double frac, boolean recompute, int frozenBytes) {
        int tp = l.tp(), pp = l.pp(), dp = l.dp();
        long C = c.nEmbd(), F = c.nInner(), V = c.vocabSize(), H = c.nHead(), P = c.nPositions();
        int layers = firstLayer(c.nLayer(), pp, s + 1) - firstLayer(c.nLayer(), pp, s);
        boolean first = s == 0, last = s == pp - 1;
        long vocabShard = ceilDiv(V, tp) * C;
        long perLayer = 4 * C + ceilDiv(3 * C * C + 3 * C, tp) + ceilDiv(C * C, tp) + C + ceilDiv(C * F + F, tp) + ceilDiv(F * C, tp) + C;
        long params = layers * perLayer;
        if (first) params += vocabShard + P * C;
        if (last) {
            params += 2 * C;
            if (!c.tieWordEmbeddings() || !first) params += vocabShard; // the head (a copy of wte on a later stage)
        }
        long trainable = Math.round(params * frac);
        long optimizer = zero1 && dp > 1 ? ceilDiv(2 * trainable, dp) : 2 * trainable;

        long b = batch / dp, n = b * seqLen;
        long perLayerAct = n * (C + 2 + 3 * C / tp + C / tp + C + C + 2 + 2 * F / tp + C) + b * (H / tp) * seqLen * (long) seqLen;
        // recompute keeps each layer's output (res3, the next block's input) and one shared set of the rest
        long act = recompute ? layers * n * C + perLayerAct - n * C : layers * perLayerAct;
        if (first) act += n * C;
        if (last) act += n * C + 2 * n + ceilDiv(V, tp) * n + n;
        long scratch = 3 * n * C + 3 * n * C / tp + n * F / tp;
        long inFlight = Math.min(K, pp - s);
        long activations = act * inFlight + scratch;

        long dpBytes = Traffic.allReduce(4 * trainable, dp) + Traffic.allReduce(16L * K, dp);
        long perMicro = 4L * layers * Traffic.allReduce(4 * n * C, tp);
        if (first) perMicro += Traffic.allReduce(4 * n * C, tp);                       // vocab-parallel embedding
        if (last) perMicro += Traffic.allReduce(4 * n * C, tp)                          // head's input gradient
                + Traffic.allGather(4 * n * tp, tp) + Traffic.allReduce(8 * n, tp);      // parallel cross-entropy
        long tpBytes = K * perMicro;
        long ppBytes = K * 4 * n * C * ((last ? 0 : 1) + (first ? 0 : 1));
        return new Stage(s, layers, params, trainable, trainable, optimizer, activations, dpBytes, tpBytes, ppBytes, frozenBytes);
    }

    /** Ranks per machine when the job is spread evenly over {@code machines}. */
    public int ranksPerMachine(int machines) { return (int) ceilDiv(layout.size(), Math.max(1, machines)); }

    /**
     * Bytes per step that leave a machine, per rank: tensor-parallel traffic stays inside a machine
     * while a tp group fits on one, pipeline traffic while a whole replica (tp*pp ranks) does, and
     * data-parallel traffic whenever there is more than one machine.
     */
    public long interMachineBytes(int machines) {
        if (machines <= 1) return 0;
        int perMachine = ranksPerMachine(machines);
        long b = 0;
        if (layout.tp() > perMachine) b += worst.tpBytes();
        if (layout.tp() * layout.pp() > perMachine) b += worst.ppBytes();
        if (layout.dp() > 1) b += worst.dpBytes();
        return b;
    }

    /** Human-readable report, the text {@code wafer plan} prints. */
    public String report(int machines, long memoryPerMachine, double bandwidthBytesPerS) {
        StringBuilder sb = new StringBuilder();
        GptConfig c = config;
        long total = stage(c, Layout.single(), 0, 1, 1, 1, false, 1, false, 4).params(); // the whole model, unsplit
        sb.append(String.format("model: %d layers, n_embd %d, %d heads, vocab %d; %s parameters%n",
                c.nLayer(), c.nEmbd(), c.nHead(), c.vocabSize(), count(total)));
        // a step's global batch is every micro-batch of it: --batch-size rows, --grad-accum times
        sb.append(String.format("layout: %s = %d ranks; global batch %d rows x %d tokens per step (%d micro-batch(es) of %d rows, %d rows per rank)%s%n",
                layout, layout.size(), (long) batch * gradAccum, seqLen, gradAccum, batch, batch / layout.dp(),
                (zero1 ? ", ZeRO-1" : "") + (recompute ? ", activation recomputation" : "")));
        Stage w = worst;
        sb.append(String.format("per rank (most loaded: stage %d, %d layers):%n", w.stage(), w.layers()));
        sb.append(line(frozenBytes == 4 ? "parameters" : "parameters (frozen " + (frozenBytes == 1 ? "int8)" : "bf16)"), w.paramBytes()));
        sb.append(line("gradients", 4 * w.gradients()));
        sb.append(line("optimizer (AdamW m, v)", 4 * w.optimizer()));
        sb.append(line("activations", 4 * w.activations()));
        sb.append(line("total", w.memoryBytes()));
        sb.append(String.format("sent per step, per rank:%n"));
        sb.append(line("data parallel", w.dpBytes()));
        sb.append(line("tensor parallel", w.tpBytes()));
        sb.append(line("pipeline", w.ppBytes()));
        sb.append(line("total", w.bytesPerStep()));
        if (layout.pp() > 1)
            sb.append(String.format("pipeline bubble (1F1B): %.1f%% of a step idle%n",
                    100.0 * (layout.pp() - 1) / (gradAccum + layout.pp() - 1)));
        int per = ranksPerMachine(machines);
        long need = per * w.memoryBytes();
        sb.append(String.format("machines: %d, %d rank(s) each, %s per machine", machines, per, bytes(need)));
        if (memoryPerMachine > 0)
            sb.append(need <= memoryPerMachine ? String.format(": fits in %s%n", bytes(memoryPerMachine))
                    : String.format(": does NOT fit in %s%n", bytes(memoryPerMachine))
                    + streamed(need, frozenBytes * (w.params() - w.trainable()), memoryPerMachine, frozenBytes * (w.params() - w.trainable()) / Math.max(1, w.layers())));
        else sb.append(String.format("%n"));
        long inter = interMachineBytes(machines);
        if (machines > 1) {
            sb.append(String.format("between machines: %s per rank per step", bytes(inter)));
            if (bandwidthBytesPerS > 0) sb.append(String.format(", %.3f s at %s/s", inter / bandwidthBytesPerS, bytes((long) bandwidthBytesPerS)));
            sb.append(String.format("%n"));
        }
        return sb.toString();
    }

    /**
     * How a frozen base that does not fit would stream ({@link WeightStream#budget}: the blocks beyond what it keeps are
     * read from disk every pass; {@code need} less the frozen weights counts as the heap).
     */
    private static String streamed(long need, long frozen, long memory, long perLayer) {
        long budget = WeightStream.budget(memory, memory, 0, need - frozen, perLayer), read = frozen - Math.max(0, budget);
        if (frozen == 0 || read >= frozen) return "";
        return String.format("  the frozen base streams: %s of its %s kept in memory, %s read from disk each forward and each backward pass%n",
                bytes(frozen - read), bytes(frozen), bytes(read));
    }

    /**
     * Generation (not training) of {@code batch} sequences of up to {@code seqLen} tokens with weights of {@code weightBytes}
     * per value (vectors and wpe float32): the weights, the KV cache, and what streams when they exceed the memory; a
     * decoding step reads every weight once, so the bytes per token bound its speed.
     */
    public static String generation(GptConfig c, int batch, int seqLen, int weightBytes, long memory) {
        long total = stage(c, Layout.single(), 0, 1, 1, 1, false, 1, false, 4).params();
        long C = c.nEmbd(), vectors = c.nLayer() * (9 * C + c.nInner()) + 2 * C, wpe = (long) c.nPositions() * C;
        long weights = weightBytes * (total - vectors - wpe) + 4 * (vectors + wpe), blocks = weightBytes * (long) c.nLayer() * (4 * C * C + 2 * C * c.nInner());
        long kv = 2L * c.nLayer() * C * seqLen * batch * 4;
        StringBuilder sb = new StringBuilder(String.format("generation: %d sequence(s) of up to %d tokens, %s weights%n", batch, seqLen,
                weightBytes == 4 ? "fp32" : weightBytes == 2 ? "bf16" : "int8"));
        sb.append(line("weights", weights)).append(line("KV cache", kv)).append(line("total", weights + kv));
        sb.append(String.format("  a decoding step reads the weights once: %s per step%n", bytes(weights)));
        if (memory > 0) {
            long budget = WeightStream.budget(memory, memory, weights - blocks, kv, blocks / c.nLayer());
            sb.append(blocks <= budget ? String.format("fits in %s%n", bytes(memory))
                    : String.format("does NOT fit in %s: the blocks stream, %s of their %s kept in memory, %s read from disk per token%n",
                    bytes(memory), bytes(Math.max(0, budget)), bytes(blocks), bytes(blocks - Math.max(0, budget))));
        }
        return sb.toString();
    }

    private static String line(String what, long bytes) { return String.format("  %-24s %12s%n", what, bytes(bytes)); }

    static String count(long n) {
        if (n >= 1_000_000_000L) return String.format("%.2fB", n / 1e9);
        if (n >= 1_000_000L) return String.format("%.1fM", n / 1e6);
        if (n >= 1_000L) return String.format("%.1fK", n / 1e3);
        return Long.toString(n);
    }

    static String bytes(long b) { return ai.wafer.train.Pretrainer.humanBytes(b); }

    /** Parses "80GB", "80GiB", "512MiB", "1.5TB" (decimal for GB, binary for GiB; plain numbers are bytes). */
    public static long parseBytes(String s) {
        String t = s.trim().replace(" ", "");
        String low = t.toLowerCase(java.util.Locale.ROOT);
        String[][] units = {{"tib", "1099511627776"}, {"gib", "1073741824"}, {"mib", "1048576"}, {"kib", "1024"},
                {"tb", "1e12"}, {"gb", "1e9"}, {"mb", "1e6"}, {"kb", "1e3"}, {"b", "1"}};
        for (String[] u : units) {
            if (low.endsWith(u[0])) {
                try {
                    return (long) (Double.parseDouble(t.substring(0, t.length() - u[0].length())) * Double.parseDouble(u[1]));
                } catch (NumberFormatException e) { break; }
            }
        }
        try { return (long) Double.parseDouble(t); } catch (NumberFormatException e) {
            throw new ai.wafer.WaferException("'" + s + "' is not a size (write e.g. 80GB, 64GiB, 512MiB)");
        }
    }

    /** Parses a bandwidth: "10Gbit/s", "25Gb/s" (bits), "12.5GB/s" (bytes); returns bytes per second. */
    public static double parseBandwidth(String s) {
        String t = s.trim().replace(" ", "");
        if (t.endsWith("/s")) t = t.substring(0, t.length() - 2);
        String low = t.toLowerCase(java.util.Locale.ROOT);
        for (String[] u : new String[][]{{"tbit", "1e12"}, {"gbit", "1e9"}, {"mbit", "1e6"}}) {
            if (low.endsWith(u[0])) return num(t.substring(0, t.length() - u[0].length()), s) * Double.parseDouble(u[1]) / 8;
        }
        if (t.endsWith("Gb") || t.endsWith("Mb") || t.endsWith("Tb")) {
            double scale = t.endsWith("Gb") ? 1e9 : t.endsWith("Mb") ? 1e6 : 1e12;
            return num(t.substring(0, t.length() - 2), s) * scale / 8;
        }
        return parseBytes(t);
    }

    private static double num(String n, String whole) {
        try { return Double.parseDouble(n); } catch (NumberFormatException e) {
            throw new ai.wafer.WaferException("'" + whole + "' is not a bandwidth (write e.g. 10Gbit/s or 12.5GB/s)");
        }
    }
}
