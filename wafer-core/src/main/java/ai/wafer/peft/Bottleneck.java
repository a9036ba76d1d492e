package ai.wafer.peft;

import ai.wafer.model.BlockHooks;
import ai.wafer.tensor.Activation;
import ai.wafer.tensor.Kernels;
import ai.wafer.model.Gpt;
import ai.wafer.model.Linear;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Houlsby bottleneck adapters (Houlsby et al., 2019): after the attention output projection and after the
 * MLP, before each residual add, y = x + up(gelu(down(x))), down [C, m] and up [m, C] in Conv1D layout with
 * biases. up starts at zero, so each adapter starts as the identity.
 *
 * <p>PEFT has no bottleneck adapters; they are saved in the PEFT file layout under Wafer's own peft_type
 * (WAFER_BOTTLENECK), which Wafer loads and Hugging Face PEFT does not.
 */
public final class Bottleneck implements Method {
    private final int m;
    private final Adapter[] attn, mlp;
    private final Map<String, Parameter> tensors = new LinkedHashMap<>();

    public Bottleneck(Gpt model, int size, long seed) {
        if (size < 1) throw new ai.wafer.WaferException("adapter size must be at least 1, got " + size);
        m = size;
        int L = model.config.nLayer(), C = model.config.nEmbd();
        SplittableRandom r = new SplittableRandom(seed);
        attn = new Adapter[L];
        mlp = new Adapter[L];
        for (int l = 0; l < L; l++) {
            attn[l] = new Adapter("h." + l + ".attn.adapter", C, m, r);
            mlp[l] = new Adapter("h." + l + ".mlp.adapter", C, m, r);
            for (Adapter a : new Adapter[] {attn[l], mlp[l]})
                for (Parameter p : new Parameter[] {a.downW, a.downB, a.upW, a.upB}) tensors.put(Method.key(p.name), p);
        }
    }

    @Override public String peftType() { return "WAFER_BOTTLENECK"; }
    @Override public Map<String, Parameter> tensors() { return tensors; }

    @Override public ObjectNode config() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("bottleneck_size", m);
        o.put("non_linearity", "gelu");
        o.putArray("target_modules").add("attn").add("mlp");
        return o;
    }

    @Override public void attach(Gpt model) {
        for (int l = 0; l < attn.length; l++) {
            model.hooks(l).afterAttn = attn[l];
            model.hooks(l).afterMlp = mlp[l];
        }
    }

    static final class Adapter implements BlockHooks.InPlace {
        final Parameter downW, downB, upW, upB;
        private final int C, m;
        private float[] x0 = new float[0], pre = new float[0], act = new float[0], dh = new float[0];

        Adapter(String name, int C, int m, SplittableRandom r) {
            this.C = C;
            this.m = m;
            downW = new Parameter(name + ".down.weight", C, m);
            downB = new Parameter(name + ".down.bias", m);
            upW = new Parameter(name + ".up.weight", m, C);
            upB = new Parameter(name + ".up.bias", C);
            for (int i = 0; i < downW.size(); i++) downW.data[i] = (float) (r.nextGaussian() * 0.02);
            for (Parameter p : new Parameter[] {downW, downB, upW, upB}) p.setTrainable(true);
        }

        private void ensure(int N) {
            if (pre.length < N * m) { pre = new float[N * m]; act = new float[N * m]; dh = new float[N * m]; }
            if (x0.length < N * C) x0 = new float[N * C];
        }

        @Override public void forward(float[] x, int N) {
            ensure(N);
            System.arraycopy(x, 0, x0, 0, N * C);
            Linear.forward(pre, x0, downW, downB, N, C, m);
            Kernels.current().activation(Activation.GELU, act, pre, pre, N * m); // pre keeps GELU's slope for the backward
            // x += up(act): the up projection accumulates onto the input, which is the skip connection
            Linear.forward(x, act, upW, null, N, m, C);
            for (int i = 0; i < N; i++) for (int c = 0; c < C; c++) x[i * C + c] += x0[i * C + c] + upB.data[upB.off + c];
        }

        @Override public void backward(float[] dx, float[] dout, int N) {
            Linear.backward(dh, false, dout, act, upW, upB, N, m, C);
            Kernels.current().activationBackward(dh, pre, dh, N * m);
            if (dx != dout) System.arraycopy(dout, 0, dx, 0, N * C); // the skip path
            Linear.backward(dx, true, dh, x0, downW, downB, N, C, m);
        }
    }
}
