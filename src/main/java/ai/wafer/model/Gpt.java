package ai.wafer.model;

import ai.wafer.WaferException;
import ai.wafer.tensor.Gemm;
import ai.wafer.tensor.Parallel;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A GPT-2-architecture language model (the Cerebras-GPT family): learned positions, pre-LayerNorm
 * blocks, Conv1D weights stored [in, out], GELU MLP, final LayerNorm, and a head tied to the token
 * embedding unless the config unties it.
 *
 * <p>Forward and backward are written out layer by layer, llm.c style; activations live in
 * {@link Activations}, allocated once per batch shape and reused by every step.
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
    public final Parameter wte, wpe, lnfW, lnfB;
    /** The output projection [V, C]: wte itself when embeddings are tied. */
    public final Parameter lmHead;
    public final Block[] h;
    private final List<Parameter> params;
    private final Map<String, Parameter> byName = new LinkedHashMap<>();
    private Activations acts;
    /** Per-layer fine-tuning hooks (LoRA, (IA)3, prefixes, adapters); empty by default. */
    private final BlockHooks[] hooks;

    /** A model with every parameter zero; see {@link #init} for random initialisation. */
    public Gpt(GptConfig cfg) { this(cfg, Map.of()); }

    /**
     * A model whose parameters named in {@code frozen} take those values (little-endian float32 segments, such
     * as mapped slices of a checkpoint file) and stay frozen, with no heap copy; the rest start at zero and
     * trainable. {@code Checkpoint.loadFrozen} builds the map.
     */
    public Gpt(GptConfig cfg, Map<String, MemorySegment> frozen) {
        this.config = cfg;
        int C = cfg.nEmbd(), F = cfg.nInner(), V = cfg.vocabSize();
        List<Parameter> ps = new ArrayList<>();
        wte = add(ps, param(frozen, "wte.weight", V, C));
        wpe = add(ps, param(frozen, "wpe.weight", cfg.nPositions(), C));
        h = new Block[cfg.nLayer()];
        for (int l = 0; l < h.length; l++) {
            String p = "h." + l + ".";
            h[l] = new Block(param(frozen, p + "ln_1.weight", C), param(frozen, p + "ln_1.bias", C),
                    param(frozen, p + "attn.c_attn.weight", C, 3 * C), param(frozen, p + "attn.c_attn.bias", 3 * C),
                    param(frozen, p + "attn.c_proj.weight", C, C), param(frozen, p + "attn.c_proj.bias", C),
                    param(frozen, p + "ln_2.weight", C), param(frozen, p + "ln_2.bias", C),
                    param(frozen, p + "mlp.c_fc.weight", C, F), param(frozen, p + "mlp.c_fc.bias", F),
                    param(frozen, p + "mlp.c_proj.weight", F, C), param(frozen, p + "mlp.c_proj.bias", C));
            for (Parameter q : h[l].all()) add(ps, q);
        }
        lnfW = add(ps, param(frozen, "ln_f.weight", C));
        lnfB = add(ps, param(frozen, "ln_f.bias", C));
        lmHead = cfg.tieWordEmbeddings() ? wte : add(ps, param(frozen, "lm_head.weight", V, C));
        params = Collections.unmodifiableList(ps);
        for (Parameter p : ps) if (!p.isMapped()) p.setTrainable(true);
        hooks = new BlockHooks[h.length];
        clearHooks();
    }

    private static Parameter param(Map<String, MemorySegment> frozen, String name, int... shape) {
        MemorySegment s = frozen.get(name);
        // a mapping of the wrong size is left out, so that loading names the misshapen tensor
        if (s != null && s.byteSize() == Parameter.count(shape) * Float.BYTES) return Parameter.mapped(name, shape, s);
        return new Parameter(name, shape);
    }

    private Parameter add(List<Parameter> ps, Parameter p) {
        ps.add(p);
        byName.put(p.name, p);
        return p;
    }

    /**
     * Cerebras-GPT's initialisation: weights normal with std 0.02, the two output projections of
     * each block (attn.c_proj, mlp.c_proj) with 0.02 / sqrt(2 * n_layer), biases zero, LayerNorm gains one.
     * Each tensor draws from its own stream split from {@code seed}, so the result is independent of threads.
     */
    public static Gpt init(GptConfig cfg, long seed) {
        Gpt m = new Gpt(cfg);
        float std = cfg.initializerRange();
        float projStd = (float) (std / Math.sqrt(2.0 * cfg.nLayer()));
        SplittableRandom root = new SplittableRandom(seed);
        for (Parameter p : m.params) {
            SplittableRandom r = root.split();
            if (p.name.endsWith(".bias")) continue;
            if (p.name.startsWith("ln_") || p.name.contains(".ln_")) { java.util.Arrays.fill(p.data, 1f); continue; }
            float s = p.name.endsWith("attn.c_proj.weight") || p.name.endsWith("mlp.c_proj.weight") ? projStd : std;
            for (int i = 0; i < p.data.length; i++) p.data[i] = (float) (r.nextGaussian() * s);
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

    /** The activations of the last forward pass (null before the first). */
    public Activations activations() { return acts; }

    /** Allocates activations for batches up to [B, T] now, so no later batch of at most that size allocates. */
    public void reserve(int B, int T) { activationsFor(B, T); }

    private Activations activationsFor(int B, int T) {
        if (acts == null || !acts.fits(B, T))
            acts = acts == null ? new Activations(config, B, T) : new Activations(config, Math.max(B, acts.maxB), Math.max(T, acts.maxT));
        acts.B = B;
        acts.T = T;
        return acts;
    }

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
        return h.length;
    }

    /** The hooks of layer {@code l}: where fine-tuning methods attach (all empty for a plain model). */
    public BlockHooks hooks(int l) { return hooks[l]; }

    /** Removes every hook: the plain model again. */
    public void clearHooks() { for (int l = 0; l < hooks.length; l++) hooks[l] = new BlockHooks(); }

    /**
     * Positions the sequence starts at: 0, or the prefix length under prefix tuning (Hugging Face numbers
     * positions after the past keys and values, so the tokens keep positions P, P+1, ...).
     */
    public int positionOffset() { return hooks.length > 0 && hooks[0].prefix != null ? hooks[0].prefix.length() : 0; }

    /** Checks a batch against the model: shapes, sequence length, token ids, left padding. */
    private void checkBatch(int[] inputs, int[] targets, int[] start, int B, int T) {
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
            for (int b = 0; b < B; b++)
                if (start[b] < 0 || start[b] > T) throw new WaferException("row " + b + " starts at " + start[b] + ", outside [0, " + T + "]");
        }
        int V = config.vocabSize();
        for (int i = 0; i < B * T; i++) {
            if (inputs[i] < 0 || inputs[i] >= V)
                throw new WaferException("token id " + inputs[i] + " at position " + i + " is outside the vocabulary [0, " + V + ")");
            if (targets != null && targets[i] >= V)
                throw new WaferException("target id " + targets[i] + " at position " + i + " is outside the vocabulary [0, " + V + ")");
        }
    }

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
        int C = config.nEmbd(), V = config.vocabSize(), BT = B * T;
        Activations a = body(inputs, start, B, T);
        a.ensureLogits();
        long t = Profile.t();
        Gemm.sgemm(false, true, BT, V, C, 1f, a.lnf, 0, C, lmHead.values(), 0, C, 0f, a.logits, 0, V);
        t = Profile.add("lm_head fwd", t);
        if (targets == null) {
            a.hasTargets = false;
            return Float.NaN;
        }
        System.arraycopy(targets, 0, a.targets, 0, BT);
        a.hasTargets = true;
        int valid = 0;
        for (int i = 0; i < BT; i++) if (!CrossEntropy.ignored(targets[i])) valid++;
        a.validTargets = valid;
        double sum = CrossEntropy.forward(a.logits, a.losses, targets, BT, V);
        t = Profile.add("softmax+loss fwd", t);
        return valid == 0 ? 0f : (float) (sum / valid);
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
        Activations a = body(inputs, start, B, T);
        a.hasTargets = false;
        return a.lnf;
    }

    /** Embeddings, blocks (with their hooks) and ln_f; the result is in a.lnf. */
    private Activations body(int[] inputs, int[] start, int B, int T) {
        GptConfig c = config;
        int C = c.nEmbd(), F = c.nInner(), H = c.nHead(), BT = B * T;
        Activations a = activationsFor(B, T);
        System.arraycopy(inputs, 0, a.inputs, 0, BT);
        a.leftPadded = false;
        for (int b = 0; start != null && b < B; b++) a.leftPadded |= (a.start[b] = start[b]) > 0;
        int[] pad = a.leftPad();
        long t = Profile.t();
        Encoder.forward(a.encoded, inputs, wte.values(), wpe.values(), B, T, C, positionOffset(), pad);
        t = Profile.add("encoder fwd", t);
        float[] res = a.encoded;
        for (int l = 0; l < h.length; l++) {
            Block w = h[l];
            BlockHooks k = hooks[l];
            LayerNorm.forward(a.ln1[l], a.ln1Mean[l], a.ln1Rstd[l], res, w.ln1W.data, w.ln1B.data, BT, C, c.layerNormEpsilon());
            t = Profile.add("layernorm fwd", t);
            Linear.forward(a.qkv[l], a.ln1[l], w.attnW.values(), w.attnB.data, BT, C, 3 * C);
            if (k.cAttn != null) k.cAttn.forward(a.qkv[l], a.ln1[l], BT);
            if (k.qkvScale != null) k.qkvScale.forward(a.qkv[l], BT);
            t = Profile.add("c_attn fwd", t);
            if (k.prefix != null) k.prefix.forward(a.atty[l], a.qkv[l], B, T, C, H, c.scaleAttnWeights(), pad);
            else Attention.forward(a.atty[l], a.att[l], a.qkv[l], B, T, C, H, c.scaleAttnWeights(), pad);
            t = Profile.add("attention fwd", t);
            Linear.forward(a.res2[l], a.atty[l], w.attnProjW.values(), w.attnProjB.data, BT, C, C);
            if (k.attnProj != null) k.attnProj.forward(a.res2[l], a.atty[l], BT);
            if (k.afterAttn != null) k.afterAttn.forward(a.res2[l], BT);
            t = Profile.add("attn.c_proj fwd", t);
            add(a.res2[l], res, BT * C);
            t = Profile.add("residual fwd", t);
            LayerNorm.forward(a.ln2[l], a.ln2Mean[l], a.ln2Rstd[l], a.res2[l], w.ln2W.data, w.ln2B.data, BT, C, c.layerNormEpsilon());
            t = Profile.add("layernorm fwd", t);
            Linear.forward(a.fch[l], a.ln2[l], w.fcW.values(), w.fcB.data, BT, C, F);
            if (k.cFc != null) k.cFc.forward(a.fch[l], a.ln2[l], BT);
            t = Profile.add("c_fc fwd", t);
            Gelu.forward(c.activation(), a.fchAct[l], a.fch[l], BT * F);
            if (k.mlpAct != null) k.mlpAct.forward(a.fchAct[l], BT);
            t = Profile.add("gelu fwd", t);
            Linear.forward(a.res3[l], a.fchAct[l], w.mlpProjW.values(), w.mlpProjB.data, BT, F, C);
            if (k.mlpProj != null) k.mlpProj.forward(a.res3[l], a.fchAct[l], BT);
            if (k.afterMlp != null) k.afterMlp.forward(a.res3[l], BT);
            t = Profile.add("mlp.c_proj fwd", t);
            add(a.res3[l], a.res2[l], BT * C);
            t = Profile.add("residual fwd", t);
            res = a.res3[l];
        }
        LayerNorm.forward(a.lnf, a.lnfMean, a.lnfRstd, res, lnfW.data, lnfB.data, BT, C, c.layerNormEpsilon());
        Profile.add("layernorm fwd", t);
        return a;
    }

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
        if (a == null || !a.hasTargets) throw new IllegalStateException("backward needs a forward pass with targets");
        int BT = a.B * a.T, C = config.nEmbd(), V = config.vocabSize();
        a.hasTargets = false; // the softmax buffer is consumed below
        long t = Profile.t();
        CrossEntropy.backward(a.logits, a.targets, BT, V, scale);
        t = Profile.add("softmax+loss bwd", t);
        float[] dlogits = a.logits;
        // head: logits = lnf @ head^T
        Gemm.sgemm(false, false, BT, C, V, 1f, dlogits, 0, V, lmHead.values(), 0, C, 0f, a.dx, 0, C);
        t = Profile.add("lm_head bwd", t);
        if (lmHead.trainable()) {
            Gemm.sgemm(true, false, V, C, BT, 1f, dlogits, 0, V, a.lnf, 0, C, 1f, lmHead.grad(), 0, C);
            Profile.add("lm_head bwd", t);
        }
        backwardBody(a, a.dx);
    }

    /**
     * Adds the gradients of a loss whose gradient with respect to the hidden states of the last
     * {@link #forwardHidden} is {@code dhidden} [B*T, C] (it may be {@code activations().hidden()}'s size or larger).
     */
    public void backwardHidden(float[] dhidden) {
        Activations a = acts;
        if (a == null) throw new IllegalStateException("backwardHidden needs a forward pass first");
        backwardBody(a, dhidden);
    }

    /** From d(ln_f output) down to the embeddings, through every block and hook. */
    private void backwardBody(Activations a, float[] dlnf) {
        GptConfig c = config;
        int B = a.B, T = a.T, C = c.nEmbd(), F = c.nInner(), H = c.nHead(), BT = B * T;
        int[] pad = a.leftPad();
        if (positionOffset() > 0 && wpe.trainable())
            throw new IllegalStateException("a trainable wpe with a prefix: Encoder.backward assumes positions from 0");
        long t = Profile.t();
        float[] dres = a.dres, dx = a.dx, dy = a.dy;
        java.util.Arrays.fill(dres, 0, BT * C, 0f);
        float[] last = h.length == 0 ? a.encoded : a.res3[h.length - 1];
        LayerNorm.backward(dres, lnfW.grad(), lnfB.grad(), dlnf, last, lnfW.data, a.lnfMean, a.lnfRstd, BT, C, a.lnScratch);
        t = Profile.add("layernorm bwd", t);
        gradientsReady(h.length);
        int lowest = lowestLayerNeedingGradients();
        for (int l = h.length - 1; l >= lowest; l--) {
            Block w = h[l];
            BlockHooks k = hooks[l];
            float[] resIn = l == 0 ? a.encoded : a.res3[l - 1];
            // MLP: res3 = res2 + afterMlp(mlp_c_proj(act(c_fc(ln_2(res2))))); dres must survive for the residual
            float[] dm = dres;
            if (k.afterMlp != null) { k.afterMlp.backward(a.dadapt, dres, BT); dm = a.dadapt; }
            Linear.backward(a.dfch, false, w.mlpProjW.grad(), w.mlpProjB.grad(), dm, a.fchAct[l], w.mlpProjW.values(), BT, F, C);
            if (k.mlpProj != null) k.mlpProj.backward(a.dfch, dm, a.fchAct[l], BT);
            t = Profile.add("mlp.c_proj bwd", t);
            if (k.mlpAct != null) k.mlpAct.backward(a.dfch, a.dfch, BT);
            Gelu.backward(c.activation(), a.dfch, a.fch[l], a.dfch, BT * F);
            t = Profile.add("gelu bwd", t);
            Linear.backward(dx, false, w.fcW.grad(), w.fcB.grad(), a.dfch, a.ln2[l], w.fcW.values(), BT, C, F);
            if (k.cFc != null) k.cFc.backward(dx, a.dfch, a.ln2[l], BT);
            t = Profile.add("c_fc bwd", t);
            LayerNorm.backward(dres, w.ln2W.grad(), w.ln2B.grad(), dx, a.res2[l], w.ln2W.data, a.ln2Mean[l], a.ln2Rstd[l], BT, C, a.lnScratch);
            t = Profile.add("layernorm bwd", t);
            // attention: res2 = resIn + afterAttn(c_proj(attn(c_attn(ln_1(resIn)))))
            float[] da = dres;
            if (k.afterAttn != null) { k.afterAttn.backward(a.dadapt, dres, BT); da = a.dadapt; }
            Linear.backward(dy, false, w.attnProjW.grad(), w.attnProjB.grad(), da, a.atty[l], w.attnProjW.values(), BT, C, C);
            if (k.attnProj != null) k.attnProj.backward(dy, da, a.atty[l], BT);
            t = Profile.add("attn.c_proj bwd", t);
            if (k.prefix != null) k.prefix.backward(a.dqkv, dy, a.qkv[l], B, T, C, H, c.scaleAttnWeights(), pad);
            else Attention.backward(a.dqkv, dy, a.qkv[l], a.att[l], B, T, C, H, c.scaleAttnWeights(), a.attScratch, pad);
            t = Profile.add("attention bwd", t);
            if (k.qkvScale != null) k.qkvScale.backward(a.dqkv, a.dqkv, BT);
            Linear.backward(dx, false, w.attnW.grad(), w.attnB.grad(), a.dqkv, a.ln1[l], w.attnW.values(), BT, C, 3 * C);
            if (k.cAttn != null) k.cAttn.backward(dx, a.dqkv, a.ln1[l], BT);
            t = Profile.add("c_attn bwd", t);
            // The key bias adds q.b_k to every score of a query's row, and softmax ignores a constant
            // shift: its true gradient is exactly zero. Keep it zero rather than float32 rounding noise,
            // which AdamW would normalise into steps of size ~lr.
            if (w.attnB.trainable()) java.util.Arrays.fill(w.attnB.grad(), C, 2 * C, 0f);
            LayerNorm.backward(dres, w.ln1W.grad(), w.ln1B.grad(), dx, resIn, w.ln1W.data, a.ln1Mean[l], a.ln1Rstd[l], BT, C, a.lnScratch);
            t = Profile.add("layernorm bwd", t);
            gradientsReady(l);
        }
        if (wte.trainable() || wpe.trainable()) {
            Encoder.backward(wte.grad(), wpe.grad(), dres, a.inputs, B, T, C, pad);
            Profile.add("encoder bwd", t);
        }
        gradientsReady(-1);
    }

    /**
     * The backward pass can stop above the lowest block with something to train: below it (and with frozen
     * embeddings) no gradient is needed. Top-k fine-tuning then pays for its k blocks only.
     */
    private int lowestLayerNeedingGradients() {
        if (wte.trainable() || wpe.trainable()) return 0;
        for (int l = 0; l < h.length; l++) {
            if (!hooks[l].isEmpty()) return l;
            for (Parameter p : h[l].all()) if (p.trainable()) return l;
        }
        return h.length;
    }

    private static void add(float[] acc, float[] x, int n) {
        Parallel.forRange(n, (w, from, to) -> { for (int i = from; i < to; i++) acc[i] += x[i]; });
    }
}
