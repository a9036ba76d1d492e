package ai.wafer.model;

import ai.wafer.WaferException;
import ai.wafer.parallel.Communicator;
import ai.wafer.tensor.Kernels;
import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.VecMath;
import ai.wafer.tensor.Weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BiFunction;

import static ai.wafer.model.Slice.Kind.*;

/**
 * A GPT-2-architecture language model (the Cerebras-GPT family): learned positions, pre-LayerNorm
 * blocks, Conv1D weights stored [in, out], GELU MLP, final LayerNorm, and a head tied to the token
 * embedding unless the config unties it.
 *
 * <p>Forward and backward are written out layer by layer, llm.c style; activations live in
 * {@link Activations}, allocated once per batch shape and reused by every step.
 *
 * <p>The same class is one rank's shard of the model ({@link #shard}): tensor rank t of n and the layers
 * [l0, l1) of a pipeline stage. Tensor parallelism is Megatron's: rank t holds heads [t*H/n, (t+1)*H/n) (those
 * columns of c_attn's q, k and v, those rows of attn.c_proj) and columns [t*F/n, ...) of c_fc (those rows of
 * mlp.c_proj). A column-parallel layer needs its whole input (every rank has it); a row-parallel one yields a
 * partial sum, so one all-reduce follows each c_proj in forward (then its bias, once) and each of c_attn's and
 * c_fc's input gradients in backward. LayerNorms, wpe and the c_proj biases are replicated. wte and the head are
 * split by vocabulary: the embedding is a partial lookup plus an all-reduce, the head gives each rank its slice
 * of the logits and the cross-entropy runs on the slices. The first stage embeds, a later one takes the previous
 * stage's output; the last normalises, projects and scores. With tied embeddings and several stages the last
 * stage holds its own copy of the (sliced) embedding as its head; the trainer sums the two copies' gradients.
 * At n = 1 and every layer the shard computes exactly what the whole model computes.
 */
public final class Gpt {
    /** One transformer block's parameters, named as in Hugging Face's GPT2Block. */
    public record Block(Parameter ln1W, Parameter ln1B, Parameter attnW, Parameter attnB, Parameter attnProjW,
                        Parameter attnProjB, Parameter ln2W, Parameter ln2B, Parameter fcW, Parameter fcB,
                        Parameter mlpProjW, Parameter mlpProjB) {
        List<Parameter> all() {
            return List.of(ln1W, ln1B, attnW, attnB, attnProjW, attnProjB, ln2W, ln2B, fcW, fcB, mlpProjW, mlpProjB);
        }
    }

    public final GptConfig config;
    /** Null on a pipeline stage that does not hold them (wte, wpe: the first; ln_f: the last). */
    public final Parameter wte, wpe, lnfW, lnfB;
    /** The output projection [V, C]: wte itself when embeddings are tied (null before the last stage). */
    public final Parameter lmHead;
    /** The blocks held: layers [l0, l1) (all of them for the whole model). */
    public final Block[] h;
    private final List<Parameter> params;
    private final Map<String, Parameter> byName = new LinkedHashMap<>();
    private Activations acts;
    /** Per-layer fine-tuning hooks (LoRA, (IA)3, prefixes, adapters); empty by default. */
    private final BlockHooks[] hooks;

    /** The tensor group (null when the shard is not split, n = 1); this rank t of n. */
    private final Communicator tp;
    final int tpRank, tpSize;
    /** Layers [l0, l1), vocabulary rows [v0, v1) of wte and the head; local widths C/n, n_inner/n, heads/n. */
    final int l0, l1, v0, v1, Cl, Fl, Hl;
    /** Where each parameter of a shard sits in the whole model; null for the whole model itself. */
    private final Map<Parameter, Slice> slices;
    /** Backward scratch that {@link #newActs} shares between a pipeline's micro-batches; the last input gradient. */
    private Activations scratch;
    private float[] inputGrad;
    /** Streams the blocks' mapped weights from disk when they exceed the memory; null when they fit. */
    private WeightStream stream;
    /** Activation recomputation: see {@link #setRecompute}. */
    private boolean recompute;

    /** A model with every parameter zero; see {@link #init} for random initialisation. */
    public Gpt(GptConfig cfg) { this(cfg, Map.of()); }

    /**
     * A model whose parameters named in {@code frozen} take those values (little-endian float32 segments, such
     * as mapped slices of a checkpoint file) and stay frozen, with no heap copy; the rest start at zero and
     * trainable. {@code Checkpoint.loadFrozen} builds the map.
     */
    public Gpt(GptConfig cfg, Map<String, Weights> frozen) { this(cfg, (name, shape) -> frozen.get(name)); }

    /** As above, with parameter {@code name} of {@code shape} taking {@code frozen.apply(name, shape)} where that is not null. */
    public Gpt(GptConfig cfg, BiFunction<String, int[], Weights> frozen) {
        this(cfg, null, 0, cfg.nLayer(), (name, cut, shape) -> param(frozen.apply(name, shape), name, shape), null);
        for (Parameter p : params) if (!p.isMapped()) p.setTrainable(true);
    }

    /**
     * Tensor rank tp.rank() of tp.size() (tp null: one) of pipeline stage layers [l0, l1) of {@code full}: this
     * rank's slices of its weights, named as in the whole model, all trainable. Heads and n_inner must divide
     * by the tensor-parallel degree.
     */
    public static Gpt shard(Gpt full, Communicator tp, int l0, int l1) {
        GptConfig c = full.config;
        int n = tp == null ? 1 : tp.size();
        if (c.nHead() % n != 0 || c.nInner() % n != 0)
            throw new WaferException("tp=" + n + " must divide the number of heads (" + c.nHead() + ") and n_inner (" + c.nInner() + ")");
        if (c.vocabSize() < n) throw new WaferException("tp=" + n + " exceeds the vocabulary (" + c.vocabSize() + ")");
        if (l0 < 0 || l1 > c.nLayer() || l0 >= l1)
            throw new WaferException("stage layers [" + l0 + ", " + l1 + ") are not within the model's " + c.nLayer());
        int t = tp == null ? 0 : tp.rank();
        Map<Parameter, Slice> cuts = new IdentityHashMap<>();
        Gpt m = new Gpt(c, tp, l0, l1, (name, cut, shape) -> {
            Parameter whole = full.parameter(name);
            Slice s = Slice.of(cut, whole.shape, t, n);
            Parameter p = new Parameter(name, s.shape(whole.shape));
            s.copy(whole.array(), p.data, true); // a new parameter owns its array (off 0)
            cuts.put(p, s);
            return p;
        }, cuts);
        for (Parameter p : m.params) p.setTrainable(true);
        m.recompute = full.recompute; // a stage recomputes its blocks in backward as the whole model would
        return m;
    }

    /** Where parameters come from: a fresh (or mapped) whole tensor of {@code shape}, or this rank's {@code cut} of one. */
    private interface Source { Parameter get(String name, Slice.Kind cut, int... shape); }

    private Gpt(GptConfig cfg, Communicator tp, int l0, int l1, Source src, Map<Parameter, Slice> slices) {
        this.config = cfg;
        this.tp = tp != null && tp.size() > 1 ? tp : null;
        tpRank = this.tp == null ? 0 : tp.rank();
        tpSize = this.tp == null ? 1 : tp.size();
        this.l0 = l0;
        this.l1 = l1;
        this.slices = slices;
        int C = cfg.nEmbd(), F = cfg.nInner(), V = cfg.vocabSize(), n = tpSize;
        Cl = C / n; Fl = F / n; Hl = cfg.nHead() / n;
        v0 = Slice.part(V, tpRank, n);
        v1 = Slice.part(V, tpRank + 1, n);
        boolean first = l0 == 0, last = l1 == cfg.nLayer();
        List<Parameter> ps = new ArrayList<>();
        wte = first ? add(ps, src.get("wte.weight", ROWS, V, C)) : null;
        wpe = first ? add(ps, src.get("wpe.weight", WHOLE, cfg.nPositions(), C)) : null;
        h = new Block[l1 - l0];
        for (int l = l0; l < l1; l++) {
            String p = "h." + l + ".";
            h[l - l0] = new Block(src.get(p + "ln_1.weight", WHOLE, C), src.get(p + "ln_1.bias", WHOLE, C),
                    src.get(p + "attn.c_attn.weight", QKV, C, 3 * C), src.get(p + "attn.c_attn.bias", QKV, 3 * C),
                    src.get(p + "attn.c_proj.weight", ROWS, C, C), src.get(p + "attn.c_proj.bias", WHOLE, C),
                    src.get(p + "ln_2.weight", WHOLE, C), src.get(p + "ln_2.bias", WHOLE, C),
                    src.get(p + "mlp.c_fc.weight", COLS, C, F), src.get(p + "mlp.c_fc.bias", COLS, F),
                    src.get(p + "mlp.c_proj.weight", ROWS, F, C), src.get(p + "mlp.c_proj.bias", WHOLE, C));
            for (Parameter q : h[l - l0].all()) add(ps, q);
        }
        lnfW = last ? add(ps, src.get("ln_f.weight", WHOLE, C)) : null;
        lnfB = last ? add(ps, src.get("ln_f.bias", WHOLE, C)) : null;
        if (!last) lmHead = null;
        else if (!cfg.tieWordEmbeddings()) lmHead = add(ps, src.get("lm_head.weight", ROWS, V, C));
        else lmHead = first ? wte : add(ps, src.get("wte.weight", ROWS, V, C)); // the last stage's copy
        params = Collections.unmodifiableList(ps);
        for (Parameter p : params) p.lrScale = cfg.mup().lrScale(p.name);
        hooks = new BlockHooks[h.length];
        clearHooks();
    }

    private static Parameter param(Weights s, String name, int... shape) {
        // a mapping of the wrong size is left out, so that loading names the misshapen tensor
        if (s != null && s.size() == Parameter.count(shape)) return Parameter.mapped(name, shape, s);
        return new Parameter(name, shape);
    }

    private Parameter add(List<Parameter> ps, Parameter p) {
        ps.add(p);
        byName.put(p.name, p);
        return p;
    }

    /**
     * Cerebras-GPT's initialisation: weights normal with std 0.02, the two output projections of
     * each block (attn.c_proj, mlp.c_proj) with 0.02 / sqrt(2 * n_layer), biases zero, LayerNorm gains one;
     * under µP the block matrices' std is also times sqrt(width scale) ({@link MuP}).
     * Each tensor draws from its own stream split from {@code seed}, so the result is independent of threads.
     */
    public static Gpt init(GptConfig cfg, long seed) {
        Gpt m = new Gpt(cfg);
        SplittableRandom root = new SplittableRandom(seed);
        for (Parameter p : m.params) {
            SplittableRandom r = root.split();
            float s = cfg.initStd(p.name);
            if (s == 0) Arrays.fill(p.data, p.off, p.off + p.size(), GptConfig.initConstant(p.name));
            else for (int i = 0; i < p.size(); i++) p.data[p.off + i] = (float) (r.nextGaussian() * s);
        }
        return m;
    }

    /** Every parameter once, in Hugging Face's order (the tied head is not repeated). */
    public List<Parameter> parameters() { return params; }

    public Parameter parameter(String name) {
        Parameter p = byName.get(name);
        if (p == null) throw new WaferException("model has no parameter '" + name + "'");
        return p;
    }

    public boolean hasParameter(String name) { return byName.containsKey(name); }

    public long parameterCount() {
        long n = 0;
        for (Parameter p : params) n += p.size();
        return n;
    }

    public void zeroGrad() { for (Parameter p : params) p.zeroGrad(); }

    // ---- the shard ------------------------------------------------------------------------------

    /** True for a tensor or pipeline rank's part of the model (made by {@link #shard}). */
    public boolean isShard() { return slices != null; }
    public boolean firstStage() { return l0 == 0; }
    public boolean lastStage() { return l1 == config.nLayer(); }
    /** The embedding this rank holds (its vocabulary rows), null on a later pipeline stage. */
    public Parameter tokenEmbedding() { return wte; }
    /** The head's weight this rank holds (wte itself, or the last stage's copy of it, when tied), null before the last stage. */
    public Parameter headWeight() { return lmHead; }

    /** True for parameters every tensor rank holds whole (their gradients are identical across the tensor group). */
    public boolean isReplicated(Parameter p) { return slice(p).kind() == WHOLE; }

    /** True for the last stage's copy of a tied embedding (its gradient is summed with the first stage's). */
    public boolean isTiedHeadCopy(Parameter p) { return p == lmHead && lmHead != wte && config.tieWordEmbeddings(); }

    private Slice slice(Parameter p) { return slices == null ? Slice.WHOLE : slices.get(p); }

    private String shardName() {
        return "tensor rank " + tpRank + " of " + tpSize + ", layers [" + l0 + ", " + l1 + ") of " + config.nLayer();
    }

    /** Refuses what only the unsharded model does (hooks, left padding). */
    private void requireWhole(String what) {
        if (isShard()) throw new WaferException(what + " needs the whole model; this is a shard (" + shardName() + ")");
    }

    /**
     * Writes this shard's parameters into {@code full} (every rank gets the whole model): each piece is
     * placed by its owner and the rest summed from zeros over the tensor group, then over the pipeline
     * group (null for one stage). Replicated tensors are placed by tensor rank 0 only, a tied head copy
     * not at all (the first stage's embedding is the same tensor), so every sum is exact.
     */
    public void gather(Gpt full, Communicator pp) { gather(full, arrays(params), arrays(full.parameters()), pp); }

    /**
     * As {@link #gather(Gpt, Communicator)} for any tensors cut like the parameters (AdamW's moments):
     * {@code local.get(i)} is this rank's piece of parameters().get(i); {@code out.get(j)}, the whole of
     * full.parameters().get(j), is overwritten on every rank of the tensor and pipeline groups.
     */
    public void gather(Gpt full, List<float[]> local, List<float[]> out, Communicator pp) {
        for (float[] o : out) Arrays.fill(o, 0f);
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            if (isReplicated(p) && tpRank != 0 || isTiedHeadCopy(p)) continue;
            slice(p).copy(out.get(indexIn(full, p)), local.get(i), false);
        }
        for (float[] o : out) {
            if (tp != null) tp.allReduceSum(o, 0, o.length);
            if (pp != null && pp.size() > 1) pp.allReduceSum(o, 0, o.length);
        }
    }

    /** Loads this shard's pieces from a whole model (e.g. a checkpoint). */
    public void load(Gpt full) {
        List<float[]> local = arrays(params);
        scatter(full, arrays(full.parameters()), local);
        for (int i = 0; i < params.size(); i++) { // a parameter bound to a flat store read a copy of its slice
            Parameter p = params.get(i);
            if (local.get(i) != p.data) System.arraycopy(local.get(i), 0, p.data, p.off, p.size());
        }
    }

    /**
     * Cuts this shard's pieces out of whole tensors laid out like full.parameters() ({@code from}) into
     * {@code local}, parallel to parameters(): the way the weights were cut, so moments follow them.
     */
    public void scatter(Gpt full, List<float[]> from, List<float[]> local) {
        for (int i = 0; i < params.size(); i++) slice(params.get(i)).copy(from.get(indexIn(full, params.get(i))), local.get(i), true);
    }

    private static List<float[]> arrays(List<Parameter> ps) {
        List<float[]> out = new ArrayList<>(ps.size());
        for (Parameter p : ps) out.add(p.array());
        return out;
    }

    /** Where the tensor named like {@code p} sits in {@code full.parameters()}. */
    private static int indexIn(Gpt full, Parameter p) { return full.parameters().indexOf(full.parameter(p.name)); }

    // ---- activations ----------------------------------------------------------------------------

    /** The activations of the last forward pass (null before the first). */
    public Activations activations() { return acts; }

    /**
     * Activation recomputation (gradient checkpointing per block, as Hugging Face's gradient_checkpointing): the
     * activations keep only each block's input (the residual stream entering it) and one shared set of the blocks' other
     * buffers; backward runs block l's forward again (up to the MLP activation) from its input just before block l's
     * backward, and the top block's not at all. Most of one more forward pass of time for the activations of one block
     * instead of n_layer; the loss and gradients are the same bits.
     * Takes effect for activations allocated afterwards (those held now are dropped).
     */
    public void setRecompute(boolean on) {
        if (on == recompute) return;
        recompute = on;
        acts = null;
        scratch = null;
    }

    public boolean recompute() { return recompute; }

    /** Allocates activations for batches up to [B, T] now, so no later batch of at most that size allocates. */
    public void reserve(int B, int T) { activationsFor(B, T); }

    private Activations activationsFor(int B, int T) {
        if (acts == null || !acts.fits(B, T))
            acts = acts == null ? new Activations(this, B, T, null, false) : new Activations(this, Math.max(B, acts.maxB), Math.max(T, acts.maxT), null, false);
        acts.B = B;
        acts.T = T;
        return acts;
    }

    /**
     * Activations of one micro-batch [B, T] for {@link #forward(Activations, int[], float[], int[])}: a pipeline
     * keeps one per micro-batch in flight. Their backward scratch is shared (one backward runs at a time).
     */
    public Activations newActs(int B, int T) {
        if (B <= 0 || T <= 0) throw new WaferException("batch shape must be positive, got B=" + B + " T=" + T);
        if (T > config.nPositions()) throw new WaferException("sequence length " + T + " exceeds n_positions " + config.nPositions());
        boolean share = scratch != null && scratch.maxB == B && scratch.maxT == T;
        Activations a = new Activations(this, B, T, share ? scratch : null, false);
        if (!share) scratch = a;
        a.B = B;
        a.T = T;
        return a;
    }

    /** Gradient with respect to the stage's input after {@link #backward(Activations, float[], float)} (not on the first stage). */
    public float[] inputGradient() { return inputGrad; }

    /**
     * Called during backward with {@code l} as soon as the parameters of {@link #layerOf} l have their final
     * gradients: n_layer after ln_f (and an untied head), then each block from the top, then -1 when the embeddings
     * are done (and the pass is over). Data parallelism starts exchanging a bucket there, while backward goes on
     * below it. Null (the default) for none.
     */
    public void onGradientsReady(java.util.function.IntConsumer listener) { gradientsReady = listener; }

    private java.util.function.IntConsumer gradientsReady;

    private void gradientsReady(int l) { if (gradientsReady != null) gradientsReady.accept(l); }

    /** The block {@code p} belongs to, as {@link #onGradientsReady} counts: h.N is N, ln_f and lm_head n_layer, wte and wpe -1. */
    public int layerOf(Parameter p) {
        if (p.name.startsWith("h.")) return Integer.parseInt(p.name.substring(2, p.name.indexOf('.', 2)));
        if (p == wte || p == wpe) return -1;
        return config.nLayer();
    }

    /** Streams the blocks' weights through {@code s} ({@link WeightStream#attach} sets it). */
    void stream(WeightStream s) { stream = s; }

    /** The hooks of layer {@code l}: where fine-tuning methods attach (all empty for a plain model). */
    public BlockHooks hooks(int l) {
        requireWhole("fine-tuning hooks");
        return hooks[l];
    }

    /** Removes every hook: the plain model again. */
    public void clearHooks() { for (int l = 0; l < hooks.length; l++) hooks[l] = new BlockHooks(); }

    /**
     * Positions the sequence starts at: 0, or the prefix length under prefix tuning (Hugging Face numbers
     * positions after the past keys and values, so the tokens keep positions P, P+1, ...).
     */
    public int positionOffset() { return hooks.length > 0 && hooks[0].prefix != null ? hooks[0].prefix.length() : 0; }

    /** Checks a batch against the model: shapes, sequence length, token ids, left padding. */
    private void checkBatch(int[] inputs, int[] targets, int[] start, int B, int T) {
        if (!firstStage() || !lastStage())
            throw new WaferException("a whole batch needs every layer; this is a pipeline stage (" + shardName()
                    + "): use forward(Activations, tokens, in, targets)");
        if (B <= 0 || T <= 0) throw new WaferException("batch shape must be positive, got B=" + B + " T=" + T);
        int off = positionOffset();
        if (T + off > config.nPositions())
            throw new WaferException("sequence length " + T + (off > 0 ? " plus a prefix of " + off : "")
                    + " exceeds the model's n_positions " + config.nPositions());
        if (inputs.length < B * T) throw new WaferException("inputs hold " + inputs.length + " tokens, batch needs " + B * T);
        if (targets != null && targets.length < B * T)
            throw new WaferException("targets hold " + targets.length + " tokens, batch needs " + B * T);
        if (start != null) {
            if (start.length < B) throw new WaferException("left padding holds " + start.length + " rows, batch has " + B);
            for (int b = 0; b < B; b++) {
                if (start[b] < 0 || start[b] > T) throw new WaferException("row " + b + " starts at " + start[b] + ", outside [0, " + T + "]");
                if (start[b] > 0) requireWhole("left padding");
            }
        }
        checkTokens(inputs, targets, B * T);
    }

    private void checkTokens(int[] inputs, int[] targets, int n) {
        int V = config.vocabSize();
        for (int i = 0; i < n; i++) {
            if (inputs != null && (inputs[i] < 0 || inputs[i] >= V))
                throw new WaferException("token id " + inputs[i] + " at position " + i + " is outside the vocabulary [0, " + V + ")");
            if (targets != null && targets[i] >= V)
                throw new WaferException("target id " + targets[i] + " at position " + i + " is outside the vocabulary [0, " + V + ")");
        }
    }

    // ---- forward --------------------------------------------------------------------------------

    /**
     * Runs the model on inputs[B*T]. With targets, returns the mean cross-entropy over the targets
     * that are not ignored (negative) and keeps the softmax for {@link #backward}; without, returns
     * NaN and leaves the raw logits in {@code activations().logits}.
     */
    public float forward(int[] inputs, int[] targets, int B, int T) { return forward(inputs, targets, null, B, T); }

    /**
     * {@link #forward(int[], int[], int, int)} of a left-padded batch: row b's real tokens start at {@code start[b]}
     * (null: no padding on the left). Real tokens then attend only to real tokens and count positions from their
     * row's first one, so they get the same hidden states as the row unpadded; pads should carry ignored targets.
     */
    public float forward(int[] inputs, int[] targets, int[] start, int B, int T) {
        checkBatch(inputs, targets, start, B, T);
        return run(activationsFor(B, T), inputs, null, targets, start, true);
    }

    /**
     * Runs this shard on one micro-batch with activations from {@link #newActs}. The first stage embeds
     * {@code tokens}; a later one takes the previous stage's output {@code in}. The last stage scores
     * {@code targets} and returns the mean loss over the valid ones; others return NaN (their output is
     * {@link Activations#output()}).
     */
    public float forward(Activations a, int[] tokens, float[] in, int[] targets) {
        if (a.past != null) throw new IllegalArgumentException("generation's activations keep nothing for backward: use newActs");
        checkTokens(firstStage() ? tokens : null, lastStage() ? targets : null, a.B * a.T);
        return run(a, tokens, in, targets, null, true);
    }

    /**
     * Runs the model up to the final LayerNorm, without the language-model head, and returns the hidden
     * states [B*T, C] (the array is reused by the next forward): what classification heads read.
     * Follow with {@link #backwardHidden}.
     */
    public float[] forwardHidden(int[] inputs, int B, int T) { return forwardHidden(inputs, null, B, T); }

    /** {@link #forwardHidden(int[], int, int)} with left padding (see {@link #forward(int[], int[], int[], int, int)}). */
    public float[] forwardHidden(int[] inputs, int[] start, int B, int T) {
        checkBatch(inputs, null, start, B, T);
        Activations a = activationsFor(B, T);
        run(a, inputs, null, null, start, false);
        return a.lnf;
    }

    /**
     * Embeddings (or the previous stage's output), blocks (with their hooks), and on the last stage ln_f, then
     * with {@code head} the logits and, given targets, the loss. Returns the mean loss, or NaN.
     */
    private float run(Activations a, int[] inputs, float[] in, int[] targets, int[] start, boolean head) {
        GptConfig c = config;
        int B = a.B, T = a.T, C = c.nEmbd(), BT = B * T;
        Kernels.current().newPass();
        a.leftPadded = false;
        for (int b = 0; start != null && b < B; b++) a.leftPadded |= (a.start[b] = start[b]) > 0;
        int[] pad = a.leftPad();
        long t = Profile.t();
        if (firstStage()) {
            System.arraycopy(inputs, 0, a.inputs, 0, BT);
            // split by vocabulary: each rank looks up its rows (rank 0 adds the positions), the sum completes it
            Encoder.forward(a.encoded, inputs, v0, wte.weights(), tpRank == 0 ? wpe.weights() : null, B, T, C, positionOffset(), pad, null);
            if (tp != null) tp.allReduceSum(a.encoded, 0, BT * C);
            scale(a.encoded, BT * C, c.mup().embeddingsScale());
            t = Profile.add("encoder fwd", t);
        } else {
            System.arraycopy(in, 0, a.encoded, 0, BT * C);
        }
        float[] res = a.encoded;
        for (int l = 0; l < h.length; l++) {
            if (stream != null) stream.enter(l, 1);
            res = block(a, l, res, pad, null, false);
        }
        a.hasTargets = false;
        if (!lastStage()) return Float.NaN;
        t = Profile.t();
        layerNorm(a.lnf, a.lnfMean, a.lnfRstd, res, lnfW, lnfB, BT);
        t = Profile.add("layernorm fwd", t);
        if (!head) return Float.NaN;
        int V = v1 - v0; // this rank's slice of the vocabulary (all of it unless split)
        a.ensureLogits();
        Kernels.current().matmul(false, true, BT, V, C, c.mup().logitScale(), a.lnf, 0, C, lmHead.weights(), 0, C, 0f, a.logits, 0, V);
        t = Profile.add("lm_head fwd", t);
        if (targets == null) return Float.NaN;
        System.arraycopy(targets, 0, a.targets, 0, BT);
        a.hasTargets = true;
        int valid = 0;
        for (int i = 0; i < BT; i++) if (!CrossEntropy.ignored(targets[i])) valid++;
        a.validTargets = valid;
        a.lossSum = tp == null ? CrossEntropy.forward(a.logits, a.losses, targets, BT, V)
                : CrossEntropy.forward(a.logits, a.losses, targets, BT, V, v0, tp, a.rowMax, a.stats);
        Profile.add("softmax+loss fwd", t);
        return valid == 0 ? 0f : (float) (a.lossSum / valid);
    }

    /**
     * Block l, Hugging Face's GPT2Block, on the B x T rows of {@code a}: res2 = res + attn.c_proj(attn(c_attn(ln_1(res))))
     * and res3 = res2 + mlp.c_proj(act(c_fc(ln_2(res2)))), with the layer's hooks; returns res3. Training and
     * generation run this same block: with {@code caches} (generation, like past_key_values) row b's T new positions
     * append their keys and values to caches[b] and attend to everything it holds, and a step of one token per row
     * (T = 1) takes the decode products, which read each weight once for all rows. {@code recompute} (backward rebuilding
     * the block's buffers) stops after the MLP activation: mlp.c_proj's backward reads only its input, and its output is
     * res3, which is kept; the hooks there keep their own per-layer state from the forward.
     */
    private float[] block(Activations a, int l, float[] res, int[] pad, KvCache[] caches, boolean recompute) {
        GptConfig c = config;
        int B = a.B, T = a.T, C = c.nEmbd(), BT = B * T;
        boolean decode = caches != null && T == 1;
        Block w = h[l];
        BlockHooks k = hooks[l];
        long t = Profile.t();
        layerNorm(a.ln1[l], a.ln1Mean[l], a.ln1Rstd[l], res, w.ln1W, w.ln1B, BT);
        t = Profile.add("layernorm fwd", t);
        linear(a.qkv[l], a.ln1[l], w.attnW, w.attnB, BT, C, 3 * Cl, decode);
        if (k.cAttn != null) k.cAttn.forward(a.qkv[l], a.ln1[l], BT);
        if (k.qkvScale != null) k.qkvScale.forward(a.qkv[l], BT);
        t = Profile.add("c_attn fwd", t);
        if (caches != null) attendCached(a, l, caches);
        else if (k.prefix != null) k.prefix.forward(a.atty[l], a.qkv[l], B, T, C, Hl, c.attnScale(), pad);
        else Kernels.current().attention(a.atty[l], a.att[l], a.qkv[l], B, T, Cl, Hl, c.attnScale(), pad);
        t = Profile.add("attention fwd", t);
        project(a.res2[l], a.atty[l], w.attnProjW, w.attnProjB, k.attnProj, k.afterAttn, BT, Cl, decode);
        t = Profile.add("attn.c_proj fwd", t);
        Kernels.current().add(a.res2[l], res, BT * C);
        t = Profile.add("residual fwd", t);
        layerNorm(a.ln2[l], a.ln2Mean[l], a.ln2Rstd[l], a.res2[l], w.ln2W, w.ln2B, BT);
        t = Profile.add("layernorm fwd", t);
        linear(a.fch[l], a.ln2[l], w.fcW, w.fcB, BT, C, Fl, decode);
        if (k.cFc != null) k.cFc.forward(a.fch[l], a.ln2[l], BT);
        t = Profile.add("c_fc fwd", t);
        // training keeps the slope in fch for the backward (nothing else reads it); generation's GELU runs in place
        float[] slope = a.fchAct[l] == a.fch[l] ? null : a.fch[l];
        Kernels.current().activation(c.activation(), a.fchAct[l], a.fch[l], slope, BT * Fl);
        if (k.mlpAct != null) k.mlpAct.forward(a.fchAct[l], BT);
        t = Profile.add("gelu fwd", t);
        if (recompute) return a.res3[l];
        project(a.res3[l], a.fchAct[l], w.mlpProjW, w.mlpProjB, k.mlpProj, k.afterMlp, BT, Fl, decode);
        t = Profile.add("mlp.c_proj fwd", t);
        Kernels.current().add(a.res3[l], a.res2[l], BT * C);
        Profile.add("residual fwd", t);
        return a.res3[l];
    }

    /**
     * A block's output projection (attn.c_proj, mlp.c_proj) with its PEFT hooks (a low-rank update of the same input,
     * then an adapter on the output). Row-parallel on a tensor rank: each rank's product is a partial sum, so the bias
     * goes in once, after the all-reduce.
     */
    private void project(float[] out, float[] in, Parameter w, Parameter b, BlockHooks.LinearAdapter update, BlockHooks.InPlace after,
                         int BT, int IC, boolean decode) {
        linear(out, in, w, tp == null ? b : null, BT, IC, config.nEmbd(), decode);
        if (update != null) update.forward(out, in, BT);
        if (after != null) after.forward(out, BT);
        if (tp != null) allReduceAddBias(out, b, BT);
    }

    /** A Conv1D forward: the GEMM, or for one new token per row the decode product (memory bound, weights read once). */
    private static void linear(float[] out, float[] in, Parameter w, Parameter b, int N, int IC, int OC, boolean decode) {
        if (decode) Linear.decode(out, in, w, b, N, IC, OC);
        else Linear.forward(out, in, w, b, N, IC, OC);
    }

    /**
     * Attention of block l in generation: each row's new keys and values go into its cache, then each (row, head)
     * attends over the cache: a chunk of queries as two GEMMs (prefill), one query as dot products (decode).
     */
    private void attendCached(Activations a, int l, KvCache[] caches) {
        int B = a.B, T = a.T, C = config.nEmbd(), H = Hl, hs = C / H;
        float scale = config.attnScale();
        float[] qkv = a.qkv[l], out = a.atty[l];
        for (int b = 0; b < B; b++) caches[b].store(l, qkv, b * T * 3 * C, T, C);
        Parallel.forRange(B * H, (wk, from, to) -> {
            for (int bh = from; bh < to; bh++) {
                int b = bh / H, h = bh % H;
                KvCache kv = caches[b];
                int base = h * kv.capacity * hs, q = b * T * 3 * C + h * hs, o = b * T * C + h * hs;
                Kernels.current().attentionCached(out, o, C, qkv, q, 3 * C, kv.k[l], kv.v[l], base, hs, kv.length, T, scale, a.scores[wk]);
            }
        });
    }

    /** Activations for {@link #forwardCached} of up to B rows of T new tokens: one set of layer buffers, no backward. */
    public Activations newGenerationActs(int B, int T) {
        requireWhole("generation");
        if (B <= 0 || T <= 0 || T > config.nPositions())
            throw new WaferException("generation batch must be positive and at most n_positions long, got B=" + B + " T=" + T);
        return new Activations(this, B, T, null, true);
    }

    /**
     * Generation's forward (Hugging Face's call with past_key_values): row b of tokens[B*T] holds T new tokens that
     * follow the caches[b].length() positions its cache holds; they run through the same blocks as training, their
     * keys and values are appended to the cache, and logits[b*V, (b+1)*V) receives the next-token logits after the
     * row's last token (logits null: none wanted). Prefill is one row with a chunk of the prompt; a decoding step is B
     * rows of one token.
     */
    public void forwardCached(Activations a, KvCache[] caches, int[] tokens, int B, int T, float[] logits) {
        if (a.past == null || !a.fits(B, T) || caches.length < B)
            throw new IllegalArgumentException("generation of B=" + B + " rows of T=" + T + " needs newGenerationActs that fit and a cache per row");
        GptConfig c = config;
        int C = c.nEmbd(), V = c.vocabSize();
        checkTokens(tokens, null, B * T);
        if (positionOffset() > 0) throw new WaferException("generation takes a prefix in its KV cache, not as a hook");
        for (int b = 0; b < B; b++) {
            if (caches[b].length + T > caches[b].capacity)
                throw new WaferException("sequence of " + (caches[b].length + T) + " tokens exceeds its cache of " + caches[b].capacity
                        + " positions (n_positions " + c.nPositions() + ")");
            if (caches[b].length + T > c.nPositions())
                throw new WaferException("position " + (caches[b].length + T - 1) + " is beyond the model's n_positions " + c.nPositions());
            a.past[b] = caches[b].length;
        }
        a.B = B;
        a.T = T;
        Kernels.current().newPass();
        Encoder.forward(a.encoded, tokens, 0, wte.weights(), wpe.weights(), B, T, C, 0, null, a.past);
        scale(a.encoded, B * T * C, c.mup().embeddingsScale());
        float[] res = a.encoded;
        for (int l = 0; l < h.length; l++) {
            if (stream != null) stream.enter(l, 1);
            res = block(a, l, res, null, caches, false);
        }
        for (int b = 0; b < B; b++) caches[b].advance(T);
        if (logits == null) return;
        for (int b = 0; b < B; b++) {
            System.arraycopy(res, (b * T + T - 1) * C, res, b * C, C); // each row's last position (rows only move down)
        }
        long t = Profile.t();
        layerNorm(a.lnf, a.lnfMean, a.lnfRstd, res, lnfW, lnfB, B);
        t = Profile.add("layernorm fwd", t);
        Kernels.current().decode(lmHead.weights(), true, B, V, C, a.lnf, logits);
        scale(logits, B * V, c.mup().logitScale());
        Profile.add("lm_head fwd", t);
    }

    /** A row-parallel layer's output: the ranks' partial sums summed, then the (replicated) bias added once. */
    private void allReduceAddBias(float[] out, Parameter b, int BT) {
        int C = config.nEmbd(), bo = b.off;
        float[] bias = b.data;
        tp.allReduceSum(out, 0, BT * C);
        Parallel.forRange(BT, (w, from, to) -> {
            for (int i = from; i < to; i++) for (int c = 0, o = i * C; c < C; c++) out[o + c] += bias[bo + c];
        });
    }

    // ---- backward -------------------------------------------------------------------------------

    /** Backward of the mean loss of the last forward: gradients are added to every trainable parameter. */
    public void backward() {
        Activations a = acts;
        backward(a == null || a.validTargets == 0 ? 0f : 1f / a.validTargets);
    }

    /**
     * Adds the gradient of (sum of token losses) * {@code scale} to every trainable parameter's grad.
     * Gradient accumulation over K micro-batches of n tokens each passes scale = 1 / (K * n).
     */
    public void backward(float scale) {
        Activations a = acts;
        if (a == null) throw new IllegalStateException("backward needs a forward pass with targets");
        backward(a, null, scale);
    }

    /**
     * Adds the gradient of (sum of token losses) * scale to every trainable parameter of this shard. The last
     * stage starts from its loss; an earlier one from {@code dout}, the gradient of its output that the next
     * stage sent. Afterwards {@link #inputGradient()} holds the gradient of the stage's input.
     */
    public void backward(Activations a, float[] dout, float scale) {
        if (!lastStage()) {
            backwardBody(a, null, dout);
            return;
        }
        if (!a.hasTargets) throw new IllegalStateException("backward needs a forward pass with targets");
        int BT = a.B * a.T, C = config.nEmbd(), V = v1 - v0;
        a.hasTargets = false; // the softmax buffer is consumed below
        long t = Profile.t();
        CrossEntropy.backward(a.logits, a.targets, BT, V, v0, scale);
        t = Profile.add("softmax+loss bwd", t);
        float[] dlogits = a.logits;
        // head: logits = s lnf @ head^T, s the µP logit scale (a vocabulary slice gives a partial sum of dlnf)
        float s = config.mup().logitScale();
        boolean fresh = lmHead.trainable() && lmHead.claimZeroGrad(); // the first gradient of a tied wte this step
        Kernels.current().matmulBackward(true, BT, V, C, s, dlogits, a.lnf, lmHead.weights(), 0, C, a.dx, false,
                lmHead.trainable() ? lmHead.grad() : null, lmHead.off, !fresh);
        if (tp != null) tp.allReduceSum(a.dx, 0, BT * C);
        Profile.add("lm_head bwd", t);
        backwardBody(a, a.dx, null);
    }

    /**
     * Adds the gradients of a loss whose gradient with respect to the hidden states of the last
     * {@link #forwardHidden} is {@code dhidden} [B*T, C] (it may be {@code activations().hidden()}'s size or larger).
     */
    public void backwardHidden(float[] dhidden) {
        Activations a = acts;
        if (a == null) throw new IllegalStateException("backwardHidden needs a forward pass first");
        backwardBody(a, dhidden, null);
    }

    /**
     * From d(ln_f output) {@code dlnf} (the last stage), or the gradient {@code dout} of the stage's output,
     * down to the embeddings or the stage's input, through every block and hook.
     */
    private void backwardBody(Activations a, float[] dlnf, float[] dout) {
        GptConfig c = config;
        int B = a.B, T = a.T, C = c.nEmbd(), H = Hl, BT = B * T;
        int[] pad = a.leftPad();
        if (positionOffset() > 0 && wpe.trainable())
            throw new IllegalStateException("a trainable wpe with a prefix: Encoder.backward assumes positions from 0");
        long t = Profile.t();
        float[] dres = a.dres, dx = a.dx, dy = a.dy;
        if (lastStage()) {
            Arrays.fill(dres, 0, BT * C, 0f);
            float[] last = h.length == 0 ? a.encoded : a.res3[h.length - 1];
            layerNormBackward(dres, dlnf, last, lnfW, lnfB, a.lnfMean, a.lnfRstd, a);
            t = Profile.add("layernorm bwd", t);
            gradientsReady(c.nLayer());
        } else {
            System.arraycopy(dout, 0, dres, 0, BT * C);
        }
        int lowest = lowestLayerNeedingGradients();
        for (int l = h.length - 1; l >= lowest; l--) {
            if (stream != null) stream.enter(l, -1);
            Block w = h[l];
            BlockHooks k = hooks[l];
            float[] resIn = l == 0 ? a.encoded : a.res3[l - 1];
            if (a.recompute && l < h.length - 1) { // the top block's buffers still hold its forward
                Profile.recomputing(true);
                block(a, l, resIn, pad, null, true); // its hooks redo their state as in forward
                Profile.recomputing(false);
                t = Profile.t();
            }
            // MLP: res3 = res2 + afterMlp(mlp_c_proj(act(c_fc(ln_2(res2))))); dres must survive for the residual
            float[] dm = dres;
            if (k.afterMlp != null) { k.afterMlp.backward(a.dadapt, dres, BT); dm = a.dadapt; }
            Linear.backward(a.dfch, false, dm, a.fchAct[l], w.mlpProjW, w.mlpProjB, BT, Fl, C);
            if (k.mlpProj != null) k.mlpProj.backward(a.dfch, dm, a.fchAct[l], BT);
            t = Profile.add("mlp.c_proj bwd", t);
            if (k.mlpAct != null) k.mlpAct.backward(a.dfch, a.dfch, BT);
            Kernels.current().activationBackward(a.dfch, a.fch[l], a.dfch, BT * Fl); // fch holds GELU's slope (see block)
            t = Profile.add("gelu bwd", t);
            Linear.backward(dx, false, a.dfch, a.ln2[l], w.fcW, w.fcB, BT, C, Fl);
            if (k.cFc != null) k.cFc.backward(dx, a.dfch, a.ln2[l], BT);
            if (tp != null) tp.allReduceSum(dx, 0, BT * C); // column-parallel: each rank's input gradient is partial
            t = Profile.add("c_fc bwd", t);
            layerNormBackward(dres, dx, a.res2[l], w.ln2W, w.ln2B, a.ln2Mean[l], a.ln2Rstd[l], a);
            t = Profile.add("layernorm bwd", t);
            // attention: res2 = resIn + afterAttn(c_proj(attn(c_attn(ln_1(resIn)))))
            float[] da = dres;
            if (k.afterAttn != null) { k.afterAttn.backward(a.dadapt, dres, BT); da = a.dadapt; }
            Linear.backward(dy, false, da, a.atty[l], w.attnProjW, w.attnProjB, BT, Cl, C);
            if (k.attnProj != null) k.attnProj.backward(dy, da, a.atty[l], BT);
            t = Profile.add("attn.c_proj bwd", t);
            if (k.prefix != null) k.prefix.backward(a.dqkv, dy, a.qkv[l], B, T, C, H, c.attnScale(), pad);
            else Kernels.current().attentionBackward(a.dqkv, dy, a.qkv[l], a.att[l], B, T, Cl, H, c.attnScale(), a.attScratch, pad);
            t = Profile.add("attention bwd", t);
            if (k.qkvScale != null) k.qkvScale.backward(a.dqkv, a.dqkv, BT);
            Linear.backward(dx, false, a.dqkv, a.ln1[l], w.attnW, w.attnB, BT, C, 3 * Cl);
            if (k.cAttn != null) k.cAttn.backward(dx, a.dqkv, a.ln1[l], BT);
            if (tp != null) tp.allReduceSum(dx, 0, BT * C);
            t = Profile.add("c_attn bwd", t);
            // The key bias adds q.b_k to every score of a query's row, and softmax ignores a constant
            // shift: its true gradient is exactly zero. Keep it zero rather than float32 rounding noise,
            // which AdamW would normalise into steps of size ~lr.
            if (w.attnB.trainable()) Arrays.fill(w.attnB.grad(), w.attnB.off + Cl, w.attnB.off + 2 * Cl, 0f);
            layerNormBackward(dres, dx, resIn, w.ln1W, w.ln1B, a.ln1Mean[l], a.ln1Rstd[l], a);
            t = Profile.add("layernorm bwd", t);
            gradientsReady(l0 + l);
        }
        if (firstStage() && (wte.trainable() || wpe.trainable())) {
            scale(dres, BT * C, c.mup().embeddingsScale()); // the encoder's output was scaled by it
            Encoder.backward(wte, wpe, dres, a.inputs, v0, B, T, C, pad);
            Profile.add("encoder bwd", t);
        }
        inputGrad = dres;
        gradientsReady(-1);
    }

    /**
     * The backward pass can stop above the lowest block with something to train: below it (and with frozen
     * embeddings) no gradient is needed. Top-k fine-tuning then pays for its k blocks only. A later pipeline
     * stage always goes down to its input, whose gradient the stage before needs.
     */
    private int lowestLayerNeedingGradients() {
        if (!firstStage() || wte.trainable() || wpe.trainable()) return 0;
        for (int l = 0; l < h.length; l++) {
            if (!hooks[l].isEmpty()) return l;
            for (Parameter p : h[l].all()) if (p.trainable()) return l;
        }
        return h.length;
    }

    /** LayerNorm over N rows of n_embd with a gain and bias parameter (their values at their offsets). */
    private void layerNorm(float[] out, float[] mean, float[] rstd, float[] in, Parameter w, Parameter b, int N) {
        Kernels.current().layerNorm(out, mean, rstd, in, w.data, w.off, b.data, b.off, N, config.nEmbd(), config.layerNormEpsilon());
    }

    private void layerNormBackward(float[] dinp, float[] dout, float[] in, Parameter w, Parameter b, float[] mean, float[] rstd, Activations a) {
        Kernels.current().layerNormBackward(dinp, dout, in, w.data, w.grad(), w.off, b.grad(), b.off, mean, rstd, a.B * a.T, config.nEmbd(), a.lnScratch);
    }

    /** x[0, n) *= s (µP's embedding and logit factors; nothing to do at 1). */
    private static void scale(float[] x, int n, double s) {
        if (s != 1) Parallel.forRange(n, (w, from, to) -> VecMath.scale(x, from, to - from, (float) s));
    }
}
