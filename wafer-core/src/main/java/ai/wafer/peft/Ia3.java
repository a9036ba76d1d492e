package ai.wafer.peft;

import ai.wafer.model.BlockHooks;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * (IA)3 (Liu et al., 2022): learned per-channel scalings, initialised to one, of the keys and values
 * (c_attn's output) and of the MLP activation (mlp.c_proj's input), as PEFT's IA3 stores them for GPT-2:
 * {@code attn.c_attn.ia3_l} [3C, 1] and {@code mlp.c_proj.ia3_l} [1, F]. The query third of c_attn's vector
 * stays one: its gradient is held at zero, so only keys and values are learned, as the method defines.
 */
public final class Ia3 implements Method {
    final Scale[] kv, ff;
    private final Map<String, Parameter> tensors = new LinkedHashMap<>();

    public Ia3(Gpt model) {
        int L = model.config.nLayer(), C = model.config.nEmbd(), F = model.config.nInner();
        kv = new Scale[L];
        ff = new Scale[L];
        for (int l = 0; l < L; l++) {
            kv[l] = new Scale(new Parameter("h." + l + ".attn.c_attn.ia3_l", 3 * C, 1), C);
            ff[l] = new Scale(new Parameter("h." + l + ".mlp.c_proj.ia3_l", 1, F), 0);
            tensors.put(Method.key(kv[l].s.name), kv[l].s);
            tensors.put(Method.key(ff[l].s.name), ff[l].s);
        }
    }

    @Override public String peftType() { return "IA3"; }
    @Override public Map<String, Parameter> tensors() { return tensors; }

    @Override public ObjectNode config() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.putArray("target_modules").add("c_attn").add("mlp.c_proj");
        o.putArray("feedforward_modules").add("mlp.c_proj");
        o.put("fan_in_fan_out", true);
        o.put("init_ia3_weights", true);
        return o;
    }

    @Override public void attach(Gpt model) {
        for (int l = 0; l < kv.length; l++) {
            model.hooks(l).qkvScale = kv[l];
            model.hooks(l).mlpAct = ff[l];
        }
    }

    /**
     * Folds the scalings into the weights and removes the hooks: c_attn's output column j (weight column and bias)
     * times its key/value scale, mlp.c_proj's input row j times its activation scale. The same function as the
     * hooked model, a plain GPT-2 again (what generation runs).
     */
    public void merge(Gpt model) {
        int C = model.config.nEmbd(), C3 = 3 * C, F = model.config.nInner();
        for (int l = 0; l < kv.length; l++) {
            Gpt.Block b = model.h[l];
            Parameter w = b.attnW(), bias = b.attnB(), p = b.mlpProjW(), s = kv[l].s, f = ff[l].s;
            for (Parameter q : List.of(w, bias, p)) q.toHeap();
            for (int i = 0; i < C; i++) for (int j = 0; j < C3; j++) w.data[w.off + i * C3 + j] *= s.get(j);
            for (int j = 0; j < C3; j++) bias.data[bias.off + j] *= s.get(j);
            for (int j = 0; j < F; j++) for (int c = 0; c < C; c++) p.data[p.off + j * C + c] *= f.get(j);
            model.hooks(l).qkvScale = null;
            model.hooks(l).mlpAct = null;
        }
    }

    /** x[N, D] *= s[D] in place; keeps the unscaled x for ds. Columns below {@code frozenCols} keep a zero gradient. */
    static final class Scale implements BlockHooks.InPlace {
        final Parameter s;
        private final int D, frozenCols;
        private float[] x0 = new float[0];

        Scale(Parameter s, int frozenCols) {
            this.s = s;
            this.D = s.size();
            this.frozenCols = frozenCols;
            Arrays.fill(s.data, s.off, s.off + s.size(), 1f);
            s.setTrainable(true);
        }

        @Override public void forward(float[] x, int N) {
            if (x0.length < N * D) x0 = new float[N * D];
            System.arraycopy(x, 0, x0, 0, N * D);
            scale(x, 0, N);
        }

        /** x[row0, row0 + N) *= s, keeping nothing: one row block of a mixed batch (see {@link MixedAdapters}). */
        void scale(float[] x, int row0, int N) {
            float[] w = s.data;
            int so = s.off;
            for (int i = row0; i < row0 + N; i++) for (int j = 0, o = i * D; j < D; j++) x[o + j] *= w[so + j];
        }

        @Override public void backward(float[] dx, float[] dout, int N) {
            float[] w = s.data, g = s.grad();
            int so = s.off;
            for (int i = 0; i < N; i++) {
                int o = i * D;
                if (g != null) for (int j = frozenCols; j < D; j++) g[so + j] += dout[o + j] * x0[o + j];
                for (int j = 0; j < D; j++) dx[o + j] = dout[o + j] * w[so + j];
            }
        }
    }
}
