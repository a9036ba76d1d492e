package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.model.Attention;
import ai.wafer.model.CrossEntropy;
import ai.wafer.model.Gelu;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.LayerNorm;
import ai.wafer.model.Linear;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Gemm;
import ai.wafer.tensor.Parallel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One rank's part of a GPT: the tensor-parallel shard (Megatron style) of a pipeline stage's layers.
 *
 * <p>Of n tensor-parallel ranks, rank t holds heads [t*H/n, (t+1)*H/n): the columns of c_attn that
 * produce their q, k and v, and the matching rows of attn.c_proj; likewise columns [t*F/n, ...) of
 * c_fc and those rows of mlp.c_proj. A column-parallel layer needs its full input (every rank has
 * it); a row-parallel one yields a partial sum, so there is one all-reduce after attn.c_proj and one
 * after mlp.c_proj in forward, and one for each input gradient of c_attn and c_fc in backward.
 * LayerNorms, position embeddings and the row-parallel biases are replicated (every rank computes
 * identical values and gradients). The token embedding and the tied head are split by vocabulary:
 * the embedding is a partial lookup plus an all-reduce; the head gives each rank its slice of the
 * logits, and the cross-entropy is computed in parallel (row maxima all-gathered, sums of
 * exponentials and target logits all-reduced) without ever assembling the logits.
 *
 * <p>A stage holds layers [l0, l1); the first stage also embeds, the last also normalises, projects
 * and scores. With tied embeddings and several stages, the last stage holds its own copy of the
 * (vocabulary-sharded) embedding as its head; the trainer keeps the two in step by summing their
 * gradients. The kernels are {@code ai.wafer.model}'s, so with n = 1 and one stage this is {@link Gpt}.
 */
public final class TensorParallelGpt {
    /** Block parameters, local shapes, as in {@link Gpt.Block}. */
    record Block(Parameter ln1W, Parameter ln1B, Parameter attnW, Parameter attnB, Parameter attnProjW, Parameter attnProjB,
                 Parameter ln2W, Parameter ln2B, Parameter fcW, Parameter fcB, Parameter mlpProjW, Parameter mlpProjB) {}

    public final GptConfig config;
    private final Communicator tp;
    final int n, t, l0, l1;
    final boolean first, last;
    final int C, F, H, V, Cl, Fl, Hl, v0, v1, Vl;
    final Parameter wte, wpe, lnfW, lnfB, head;
    final Block[] h;
    private final List<Parameter> params = new ArrayList<>();
    /** Where each local parameter sits in the full model (how to cut it out and put it back). */
    private final Map<Parameter, Slice> slices = new IdentityHashMap<>();

    /**
     * The shard of {@code full} for tensor rank tp.rank() of tp.size(), stage layers [l0, l1).
     * Heads and n_inner must divide by the tensor-parallel degree.
     */
    public TensorParallelGpt(Gpt full, Communicator tp, int l0, int l1) {
        GptConfig c = full.config;
        this.config = c;
        this.tp = tp;
        n = tp.size();
        t = tp.rank();
        C = c.nEmbd(); F = c.nInner(); H = c.nHead(); V = c.vocabSize();
        if (H % n != 0 || F % n != 0)
            throw new WaferException("tp=" + n + " must divide the number of heads (" + H + ") and n_inner (" + F + ")");
        if (l0 < 0 || l1 > c.nLayer() || l0 >= l1) throw new WaferException("stage layers [" + l0 + ", " + l1 + ") are not within the model's " + c.nLayer());
        this.l0 = l0;
        this.l1 = l1;
        first = l0 == 0;
        last = l1 == c.nLayer();
        Cl = C / n; Fl = F / n; Hl = H / n;
        v0 = (int) ((long) V * t / n);
        v1 = (int) ((long) V * (t + 1) / n);
        Vl = v1 - v0;
        wte = first ? rows(full.wte, v0, v1) : null;
        wpe = first ? replicated(full.wpe) : null;
        h = new Block[l1 - l0];
        for (int l = l0; l < l1; l++) {
            Gpt.Block b = full.h[l];
            h[l - l0] = new Block(replicated(b.ln1W()), replicated(b.ln1B()), qkvColumns(b.attnW(), C), qkvColumns(b.attnB(), 1),
                    rows(b.attnProjW(), t * Cl, (t + 1) * Cl), replicated(b.attnProjB()),
                    replicated(b.ln2W()), replicated(b.ln2B()), columns(b.fcW(), C, t * Fl, (t + 1) * Fl),
                    columns(b.fcB(), 1, t * Fl, (t + 1) * Fl), rows(b.mlpProjW(), t * Fl, (t + 1) * Fl), replicated(b.mlpProjB()));
        }
        lnfW = last ? replicated(full.lnfW) : null;
        lnfB = last ? replicated(full.lnfB) : null;
        if (!last) head = null;
        else if (full.lmHead == full.wte && first) head = wte;
        else head = rows(full.lmHead, v0, v1);
        for (Parameter p : params) p.setTrainable(true);
    }

    /** This rank's parameters, in model order. */
    public List<Parameter> parameters() { return Collections.unmodifiableList(params); }

    /** True for parameters every tensor rank holds whole (their gradients are identical across tp). */
    public boolean isReplicated(Parameter p) { return slices.get(p).kind == Kind.COPY; }

    /** True for the last stage's copy of a tied embedding (its gradient is summed with the first stage's). */
    public boolean isTiedHeadCopy(Parameter p) { return p == head && head != wte && config.tieWordEmbeddings(); }

    public Parameter tokenEmbedding() { return wte; }
    public Parameter headWeight() { return head; }
    public boolean firstStage() { return first; }
    public boolean lastStage() { return last; }

    public void zeroGrad() { for (Parameter p : params) p.zeroGrad(); }

    // ---- slicing ---------------------------------------------------------------------------------

    private enum Kind { COPY, ROWS, COLS, QKV }

    /** A local tensor as a piece of the full one: rows [r0, r1) of a [*, rowLen] matrix, or columns. */
    private record Slice(String name, Kind kind, int a, int b, int rowLen) {
        /** Copies between the full tensor's data (fullData) and the local one, in the direction asked. */
        void copy(float[] fullData, float[] local, boolean toLocal) {
            switch (kind) {
                case COPY -> move(fullData, 0, local, 0, local.length, toLocal);
                case ROWS -> move(fullData, a * rowLen, local, 0, (b - a) * rowLen, toLocal);
                case COLS -> {
                    int w = b - a, rowsN = fullData.length / rowLen;
                    for (int i = 0; i < rowsN; i++) move(fullData, i * rowLen + a, local, i * w, w, toLocal);
                }
                case QKV -> { // three column blocks of width w at a, C + a, 2C + a (C = rowLen / 3)
                    int w = b - a, c = rowLen / 3, rowsN = fullData.length / rowLen;
                    for (int i = 0; i < rowsN; i++)
                        for (int part = 0; part < 3; part++) move(fullData, i * rowLen + part * c + a, local, i * 3 * w + part * w, w, toLocal);
                }
            }
        }

        private static void move(float[] full, int fo, float[] local, int lo, int len, boolean toLocal) {
            if (toLocal) System.arraycopy(full, fo, local, lo, len);
            else System.arraycopy(local, lo, full, fo, len);
        }
    }

    private Parameter add(Parameter full, int[] shape, Kind kind, int a, int b, int rowLen) {
        Parameter p = new Parameter(full.name, shape);
        Slice s = new Slice(full.name, kind, a, b, rowLen);
        s.copy(full.data, p.data, true);
        slices.put(p, s);
        params.add(p);
        return p;
    }

    private Parameter replicated(Parameter full) { return add(full, full.shape, Kind.COPY, 0, 0, 0); }

    private Parameter rows(Parameter full, int r0, int r1) {
        int rowLen = full.shape[1];
        return add(full, new int[]{r1 - r0, rowLen}, Kind.ROWS, r0, r1, rowLen);
    }

    /** Columns [c0, c1) of a [rowsN, cols] matrix (rowsN = 1 for a bias). */
    private Parameter columns(Parameter full, int rowsN, int c0, int c1) {
        int cols = full.size() / rowsN;
        int[] shape = full.shape.length == 1 ? new int[]{c1 - c0} : new int[]{rowsN, c1 - c0};
        return add(full, shape, Kind.COLS, c0, c1, cols);
    }

    /** c_attn's columns for this rank's heads: the same range of q, of k and of v. */
    private Parameter qkvColumns(Parameter full, int rowsN) {
        int cols = full.size() / rowsN;
        int[] shape = full.shape.length == 1 ? new int[]{3 * Cl} : new int[]{rowsN, 3 * Cl};
        return add(full, shape, Kind.QKV, t * Cl, (t + 1) * Cl, cols);
    }

    /**
     * Writes this job's parameters into {@code full} (every rank gets the whole model): each piece is
     * placed by its owner and the rest summed from zeros over the tensor group, then over the pipeline
     * group (null for one stage). Replicated tensors are placed by tensor rank 0 only, a tied head copy
     * not at all (the first stage's embedding is the same tensor), so every sum is exact.
     */
    public void gather(Gpt full, Communicator pp) {
        gather(full, arrays(params), arrays(full.parameters()), pp);
    }

    /**
     * As {@link #gather(Gpt, Communicator)} for any tensors cut like the parameters (AdamW's moments):
     * {@code local.get(i)} is this rank's piece of parameters().get(i); {@code out.get(j)}, the whole of
     * full.parameters().get(j), is overwritten on every rank of the tensor and pipeline groups.
     */
    public void gather(Gpt full, List<float[]> local, List<float[]> out, Communicator pp) {
        for (float[] o : out) Arrays.fill(o, 0f);
        Map<String, Integer> at = indexOf(full);
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            Slice s = slices.get(p);
            if (s.kind == Kind.COPY && t != 0) continue;
            if (isTiedHeadCopy(p)) continue;
            s.copy(out.get(index(at, s.name)), local.get(i), false);
        }
        for (float[] o : out) {
            if (n > 1) tp.allReduceSum(o, 0, o.length);
            if (pp != null && pp.size() > 1) pp.allReduceSum(o, 0, o.length);
        }
    }

    /** Loads this rank's pieces from a full model (e.g. a checkpoint). */
    public void load(Gpt full) { scatter(full, arrays(full.parameters()), arrays(params)); }

    /**
     * Cuts this rank's pieces out of whole tensors laid out like full.parameters() ({@code from}) into
     * {@code local}, parallel to parameters(): the way the weights were split, so moments follow them.
     */
    public void scatter(Gpt full, List<float[]> from, List<float[]> local) {
        Map<String, Integer> at = indexOf(full);
        for (int i = 0; i < params.size(); i++) {
            Slice s = slices.get(params.get(i));
            s.copy(from.get(index(at, s.name)), local.get(i), true);
        }
    }

    private static List<float[]> arrays(List<Parameter> ps) {
        List<float[]> out = new ArrayList<>(ps.size());
        for (Parameter p : ps) out.add(p.data);
        return out;
    }

    private static Map<String, Integer> indexOf(Gpt full) {
        Map<String, Integer> at = new java.util.HashMap<>();
        for (int j = 0; j < full.parameters().size(); j++) at.put(full.parameters().get(j).name, j);
        return at;
    }

    private static int index(Map<String, Integer> at, String name) {
        Integer j = at.get(name);
        if (j == null) throw new WaferException("the full model has no tensor " + name);
        return j;
    }

    // ---- activations -----------------------------------------------------------------------------

    /** One micro-batch's activations on this stage (a pipeline keeps several in flight). */
    public final class Acts {
        final int B, T, BT;
        final int[] tokens, targets;
        final float[] encoded;
        final float[][] ln1, ln1Mean, ln1Rstd, qkv, att, atty, res2, ln2, ln2Mean, ln2Rstd, fch, fchAct, res3;
        final float[] lnf, lnfMean, lnfRstd, logits, losses, rowMax, stats;
        double lossSum;
        int valid;

        Acts(int B, int T) {
            this.B = B;
            this.T = T;
            BT = B * T;
            int L = h.length;
            tokens = new int[BT];
            targets = new int[BT];
            encoded = new float[BT * C];
            ln1 = new float[L][BT * C]; ln1Mean = new float[L][BT]; ln1Rstd = new float[L][BT];
            qkv = new float[L][BT * 3 * Cl];
            att = new float[L][Math.multiplyExact(B * Hl, T * T)];
            atty = new float[L][BT * Cl];
            res2 = new float[L][BT * C];
            ln2 = new float[L][BT * C]; ln2Mean = new float[L][BT]; ln2Rstd = new float[L][BT];
            fch = new float[L][BT * Fl]; fchAct = new float[L][BT * Fl];
            res3 = new float[L][BT * C];
            lnf = last ? new float[BT * C] : null;
            lnfMean = last ? new float[BT] : null;
            lnfRstd = last ? new float[BT] : null;
            logits = last ? new float[Math.multiplyExact(BT, Math.max(Vl, 1))] : null;
            losses = last ? new float[BT] : null;
            rowMax = last ? new float[BT * n] : null;
            stats = last ? new float[2 * BT] : null;
        }

        /** The stage's output: the residual stream after its last layer ([B*T, C]). */
        public float[] output() { return res3[h.length - 1]; }
    }

    public Acts newActs(int B, int T) {
        if (T > config.nPositions()) throw new WaferException("sequence length " + T + " exceeds n_positions " + config.nPositions());
        return new Acts(B, T);
    }

    // backward scratch, shared by every micro-batch (one backward runs at a time)
    private float[] dres, dx, dy, dqkv, dfch, lnScratch, attScratch;

    private void scratchFor(Acts a) {
        int BT = a.BT;
        if (dres == null || dres.length != BT * C || attScratch.length != Parallel.threads() * a.T * a.T) {
            dres = new float[BT * C]; dx = new float[BT * C]; dy = new float[BT * C];
            dqkv = new float[BT * 3 * Cl]; dfch = new float[BT * Fl];
            lnScratch = new float[Parallel.threads() * 2 * C];
            attScratch = new float[Parallel.threads() * a.T * a.T];
        }
    }

    /** Gradient with respect to the stage's input residual after {@link #backward} (not on the first stage). */
    public float[] inputGradient() { return dres; }

    // ---- forward ---------------------------------------------------------------------------------

    /**
     * Runs the stage on one micro-batch. The first stage embeds {@code tokens}; a later one takes the
     * previous stage's output {@code in}. The last stage scores {@code targets} and returns the mean loss
     * over the valid ones; others return NaN (their output is {@link Acts#output()}).
     */
    public float forward(Acts a, int[] tokens, float[] in, int[] targets) {
        int B = a.B, T = a.T, BT = a.BT;
        float eps = config.layerNormEpsilon();
        if (first) {
            for (int i = 0; i < BT; i++)
                if (tokens[i] < 0 || tokens[i] >= V) throw new WaferException("token id " + tokens[i] + " at position " + i + " is outside the vocabulary [0, " + V + ")");
            System.arraycopy(tokens, 0, a.tokens, 0, BT);
            embed(a);
        } else {
            System.arraycopy(in, 0, a.encoded, 0, BT * C);
        }
        float[] res = a.encoded;
        for (int j = 0; j < h.length; j++) {
            Block w = h[j];
            LayerNorm.forward(a.ln1[j], a.ln1Mean[j], a.ln1Rstd[j], res, w.ln1W.data, w.ln1B.data, BT, C, eps);
            Linear.forward(a.qkv[j], a.ln1[j], w.attnW.data, w.attnB.data, BT, C, 3 * Cl);
            Attention.forward(a.atty[j], a.att[j], a.qkv[j], B, T, Cl, Hl, config.scaleAttnWeights());
            Linear.forward(a.res2[j], a.atty[j], w.attnProjW.data, null, BT, Cl, C);
            if (n > 1) tp.allReduceSum(a.res2[j], 0, BT * C);
            addBiasAndResidual(a.res2[j], w.attnProjB.data, res, BT);
            LayerNorm.forward(a.ln2[j], a.ln2Mean[j], a.ln2Rstd[j], a.res2[j], w.ln2W.data, w.ln2B.data, BT, C, eps);
            Linear.forward(a.fch[j], a.ln2[j], w.fcW.data, w.fcB.data, BT, C, Fl);
            Gelu.forward(config.activation(), a.fchAct[j], a.fch[j], BT * Fl);
            Linear.forward(a.res3[j], a.fchAct[j], w.mlpProjW.data, null, BT, Fl, C);
            if (n > 1) tp.allReduceSum(a.res3[j], 0, BT * C);
            addBiasAndResidual(a.res3[j], w.mlpProjB.data, a.res2[j], BT);
            res = a.res3[j];
        }
        if (!last) return Float.NaN;
        System.arraycopy(targets, 0, a.targets, 0, BT);
        LayerNorm.forward(a.lnf, a.lnfMean, a.lnfRstd, res, lnfW.data, lnfB.data, BT, C, eps);
        if (Vl > 0) Gemm.sgemm(false, true, BT, Vl, C, 1f, a.lnf, 0, C, head.data, 0, C, 0f, a.logits, 0, Vl);
        crossEntropy(a);
        return a.valid == 0 ? 0f : (float) (a.lossSum / a.valid);
    }

    /** x = wte[token] + wpe[t]: each rank looks up the tokens of its vocabulary slice, the sum completes it. */
    private void embed(Acts a) {
        int BT = a.BT, T = a.T;
        float[] out = a.encoded, e = wte.data, p = wpe.data;
        Parallel.forRange(BT, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                int tok = a.tokens[i], o = i * C;
                if (tok >= v0 && tok < v1) System.arraycopy(e, (tok - v0) * C, out, o, C);
                else Arrays.fill(out, o, o + C, 0f);
            }
        });
        if (n > 1) tp.allReduceSum(out, 0, BT * C);
        Parallel.forRange(BT, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * C, q = (i % T) * C;
                for (int c = 0; c < C; c++) out[o + c] += p[q + c];
            }
        });
    }

    private void addBiasAndResidual(float[] out, float[] bias, float[] res, int BT) {
        Parallel.forRange(BT, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * C;
                for (int c = 0; c < C; c++) out[o + c] = (out[o + c] + bias[c]) + res[o + c];
            }
        });
    }

    /**
     * Vocabulary-parallel softmax cross-entropy: the row maximum over all slices (all-gathered maxima),
     * then the sum of exponentials and the target's logit (all-reduced; only the owner of the target's
     * slice contributes it). Leaves the probabilities of this slice in logits, as CrossEntropy does.
     */
    private void crossEntropy(Acts a) {
        int BT = a.BT;
        float[] x = a.logits, mx = a.rowMax, st = a.stats;
        for (int i = 0; i < BT; i++) {
            float m = Float.NEGATIVE_INFINITY;
            for (int j = i * Vl, e = j + Vl; j < e; j++) m = Math.max(m, x[j]);
            mx[t * BT + i] = m;
        }
        if (n > 1) tp.allGather(mx, 0, BT);
        Parallel.forRange(BT, (w, from, to) -> {
            for (int i = from; i < to; i++) {
                float m = mx[i];
                for (int s = 1; s < n; s++) m = Math.max(m, mx[s * BT + i]);
                mx[i] = m; // chunk 0 now holds the global maxima
                int tgt = a.targets[i];
                // -log p = log(sum of exp(x - max)) - (x_t - max), from the logit, as CrossEntropy computes it
                st[BT + i] = tgt >= v0 && tgt < v1 ? x[i * Vl + tgt - v0] - m : 0f;
                float sum = 0;
                for (int j = i * Vl, e = j + Vl; j < e; j++) { float v = (float) Math.exp(x[j] - m); x[j] = v; sum += v; }
                st[i] = sum;
            }
        });
        if (n > 1) tp.allReduceSum(st, 0, 2 * BT);
        double total = 0;
        int valid = 0;
        for (int i = 0; i < BT; i++) {
            float inv = 1f / st[i];
            for (int j = i * Vl, e = j + Vl; j < e; j++) x[j] *= inv;
            int tgt = a.targets[i];
            if (CrossEntropy.ignored(tgt)) { a.losses[i] = 0f; continue; }
            if (tgt >= V) throw new WaferException("target id " + tgt + " at position " + i + " is outside the vocabulary [0, " + V + ")");
            a.losses[i] = (float) (Math.log(st[i]) - st[BT + i]);
            total += a.losses[i];
            valid++;
        }
        a.lossSum = total;
        a.valid = valid;
    }

    // ---- backward --------------------------------------------------------------------------------

    /**
     * Adds the gradient of (sum of token losses) * scale to every local parameter. The last stage
     * starts from its loss; an earlier one from {@code dout}, the gradient of its output that the next
     * stage sent. Afterwards {@link #inputGradient()} holds the gradient of the stage's input.
     */
    public void backward(Acts a, float[] dout, float scale) {
        scratchFor(a);
        int B = a.B, T = a.T, BT = a.BT;
        if (last) {
            float[] p = a.logits;
            Parallel.forRange(BT, (w, from, to) -> {
                for (int i = from; i < to; i++) {
                    int o = i * Vl, tgt = a.targets[i];
                    if (CrossEntropy.ignored(tgt)) { Arrays.fill(p, o, o + Vl, 0f); continue; }
                    for (int j = o; j < o + Vl; j++) p[j] *= scale;
                    if (tgt >= v0 && tgt < v1) p[o + tgt - v0] -= scale;
                }
            });
            if (Vl > 0) {
                Gemm.sgemm(false, false, BT, C, Vl, 1f, p, 0, Vl, head.data, 0, C, 0f, dx, 0, C);
                Gemm.sgemm(true, false, Vl, C, BT, 1f, p, 0, Vl, a.lnf, 0, C, 1f, head.grad(), 0, C);
            } else {
                Arrays.fill(dx, 0, BT * C, 0f);
            }
            if (n > 1) tp.allReduceSum(dx, 0, BT * C);
            Arrays.fill(dres, 0, BT * C, 0f);
            float[] lastRes = h.length == 0 ? a.encoded : a.res3[h.length - 1];
            LayerNorm.backward(dres, lnfW.grad(), lnfB.grad(), dx, lastRes, lnfW.data, a.lnfMean, a.lnfRstd, BT, C, lnScratch);
        } else {
            System.arraycopy(dout, 0, dres, 0, BT * C);
        }
        GptConfig c = config;
        for (int j = h.length - 1; j >= 0; j--) {
            Block w = h[j];
            float[] resIn = j == 0 ? a.encoded : a.res3[j - 1];
            Linear.backward(dfch, false, w.mlpProjW.grad(), w.mlpProjB.grad(), dres, a.fchAct[j], w.mlpProjW.data, BT, Fl, C);
            Gelu.backward(c.activation(), dfch, a.fch[j], dfch, BT * Fl);
            Linear.backward(dx, false, w.fcW.grad(), w.fcB.grad(), dfch, a.ln2[j], w.fcW.data, BT, C, Fl);
            if (n > 1) tp.allReduceSum(dx, 0, BT * C);
            LayerNorm.backward(dres, w.ln2W.grad(), w.ln2B.grad(), dx, a.res2[j], w.ln2W.data, a.ln2Mean[j], a.ln2Rstd[j], BT, C, lnScratch);
            Linear.backward(dy, false, w.attnProjW.grad(), w.attnProjB.grad(), dres, a.atty[j], w.attnProjW.data, BT, Cl, C);
            Attention.backward(dqkv, dy, a.qkv[j], a.att[j], B, T, Cl, Hl, c.scaleAttnWeights(), attScratch);
            Linear.backward(dx, false, w.attnW.grad(), w.attnB.grad(), dqkv, a.ln1[j], w.attnW.data, BT, C, 3 * Cl);
            if (n > 1) tp.allReduceSum(dx, 0, BT * C);
            // the key bias's true gradient is zero (softmax ignores a shift); keep it exactly zero, as Gpt does
            Arrays.fill(w.attnB.grad(), Cl, 2 * Cl, 0f);
            LayerNorm.backward(dres, w.ln1W.grad(), w.ln1B.grad(), dx, resIn, w.ln1W.data, a.ln1Mean[j], a.ln1Rstd[j], BT, C, lnScratch);
        }
        if (first) embedBackward(a);
    }

    /** dwte[token] += dx for this rank's slice, dwpe[t] += dx; split over channels so rows never collide. */
    private void embedBackward(Acts a) {
        int BT = a.BT, T = a.T;
        float[] de = wte.grad(), dp = wpe.grad(), d = dres;
        Parallel.forRange(C, (w, from, to) -> {
            for (int i = 0; i < BT; i++) {
                int tok = a.tokens[i], o = i * C, q = (i % T) * C;
                if (tok >= v0 && tok < v1) { int e = (tok - v0) * C; for (int c = from; c < to; c++) de[e + c] += d[o + c]; }
                for (int c = from; c < to; c++) dp[q + c] += d[o + c];
            }
        });
    }
}
