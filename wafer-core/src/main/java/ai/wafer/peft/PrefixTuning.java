package ai.wafer.peft;

import ai.wafer.model.BlockHooks;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Parallel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Map;
import java.util.SplittableRandom;

/**
 * Prefix tuning (Li and Liang, 2021) without the reparametrisation MLP, as PEFT stores it:
 * {@code prompt_embeddings} [P, L * 2 * C], for virtual token p the keys and values of layer 0, then of
 * layer 1, and so on (PEFT's past_key_values layout). Every query attends to all P prefix positions and
 * causally to the sequence; the sequence's positions start at P, as with Hugging Face's past_key_values.
 */
public final class PrefixTuning implements Method {
    public final Parameter prompt;
    private final int P, L, C, H;
    private final Layer[] layers;

    public PrefixTuning(Gpt model, int virtualTokens, long seed) {
        if (virtualTokens < 1) throw new ai.wafer.WaferException("prefix length must be at least 1, got " + virtualTokens);
        P = virtualTokens;
        L = model.config.nLayer();
        C = model.config.nEmbd();
        H = model.config.nHead();
        prompt = new Parameter("prompt_embeddings", P, L * 2 * C);
        // Start from the scale of real keys and values: small random, like a fresh embedding
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < prompt.size(); i++) prompt.data[i] = (float) (r.nextGaussian() * 0.5);
        prompt.setTrainable(true);
        layers = new Layer[L];
        for (int l = 0; l < L; l++) layers[l] = new Layer(l);
    }

    @Override public String peftType() { return "PREFIX_TUNING"; }
    /** PEFT keys this tensor without a model prefix. */
    @Override public Map<String, Parameter> tensors() { return Map.of("prompt_embeddings", prompt); }

    @Override public ObjectNode config() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("num_virtual_tokens", P);
        o.put("num_layers", L);
        o.put("token_dim", C);
        o.put("num_attention_heads", H);
        o.put("num_transformer_submodules", 1);
        o.put("prefix_projection", false);
        o.put("encoder_hidden_size", C);
        return o;
    }

    public int length() { return P; }

    @Override public void attach(Gpt model) { for (int l = 0; l < L; l++) model.hooks(l).prefix = layers[l]; }

    /** Causal attention of one layer with P prefix key/value rows in front; att[B,H,T,P+T] kept for backward. */
    final class Layer implements BlockHooks.Prefix {
        private final int l;
        private float[] att = new float[0];

        Layer(int l) { this.l = l; }

        @Override public int length() { return P; }

        /** Where prefix position p's key (kv 0) or value (1) of this layer starts in the prompt's values and gradient. */
        private int pk(int p, int kv) { return prompt.off + p * L * 2 * C + (2 * l + kv) * C; }

        /**
         * The key after key j, skipping row's left pads: prefix positions 0..P-1, then the row's real tokens from
         * P + s (s = its pad count); a query attends to every prefix and, causally, to real tokens only.
         */
        private int next(int j, int s) { return j + 1 == P ? P + s : j + 1; }

        @Override public void forward(float[] out, float[] qkv, int B, int T, int C, int H, float scale, int[] start) {
            int hs = C / H, C3 = 3 * C, S = P + T;
                if (att.length < B * H * T * S) att = new float[B * H * T * S];
            float[] pe = prompt.data, a = att;
            Parallel.forRange(B * H, (w, from, to) -> {
                for (int bh = from; bh < to; bh++) {
                    int b = bh / H, h = bh % H, s0 = start == null ? 0 : start[b];
                    for (int t = 0; t < T; t++) {
                        int q = (b * T + t) * C3 + h * hs, r = (bh * T + t) * S, o = (b * T + t) * C + h * hs;
                        java.util.Arrays.fill(a, r, r + S, 0f);
                        if (t < s0) { java.util.Arrays.fill(out, o, o + hs, 0f); continue; } // a pad: zero, and read by no one
                        float max = Float.NEGATIVE_INFINITY;
                        for (int j = 0; j <= P + t; j = next(j, s0)) {
                            int k = j < P ? pk(j, 0) + h * hs : (b * T + j - P) * C3 + C + h * hs;
                            float[] ks = j < P ? pe : qkv;
                            float s = 0;
                            for (int i = 0; i < hs; i++) s += qkv[q + i] * ks[k + i];
                            a[r + j] = s * scale;
                            max = Math.max(max, a[r + j]);
                        }
                        float sum = 0;
                        for (int j = 0; j <= P + t; j = next(j, s0)) { float e = (float) Math.exp(a[r + j] - max); a[r + j] = e; sum += e; }
                        for (int j = 0; j <= P + t; j = next(j, s0)) a[r + j] /= sum;
                        for (int i = 0; i < hs; i++) out[o + i] = 0f;
                        for (int j = 0; j <= P + t; j = next(j, s0)) {
                            int v = j < P ? pk(j, 1) + h * hs : (b * T + j - P) * C3 + 2 * C + h * hs;
                            float[] vs = j < P ? pe : qkv;
                            float p = a[r + j];
                            for (int i = 0; i < hs; i++) out[o + i] += p * vs[v + i];
                        }
                    }
                }
            });
        }

        @Override public void backward(float[] dqkv, float[] dout, float[] qkv, int B, int T, int C, int H, float scale, int[] start) {
            int hs = C / H, C3 = 3 * C, S = P + T;
                float[] pe = prompt.data, g = prompt.grad(), a = att;
            java.util.Arrays.fill(dqkv, 0, B * T * C3, 0f);
            // one head per task: heads own disjoint columns of the prefix gradient, so no two threads collide
            Parallel.forRange(H, (w, from, to) -> {
                float[] ds = new float[S]; // per task, not per token: allocation is O(threads) per call
                for (int h = from; h < to; h++) {
                    for (int b = 0; b < B; b++) {
                        int bh = b * H + h, s0 = start == null ? 0 : start[b];
                        for (int t = s0; t < T; t++) { // pads had zero output: no gradient to or through them
                            int q = (b * T + t) * C3 + h * hs, r = (bh * T + t) * S, o = (b * T + t) * C + h * hs;
                            float dot = 0;
                            for (int j = 0; j <= P + t; j = next(j, s0)) {
                                int v = j < P ? pk(j, 1) + h * hs : (b * T + j - P) * C3 + 2 * C + h * hs;
                                float[] vs = j < P ? pe : qkv;
                                float dp = 0;
                                for (int i = 0; i < hs; i++) dp += dout[o + i] * vs[v + i];
                                ds[j] = dp;
                                dot += a[r + j] * dp;
                                // dV = P^T dY
                                float p = a[r + j];
                                if (j < P) { if (g != null) for (int i = 0; i < hs; i++) g[v + i] += p * dout[o + i]; }
                                else for (int i = 0; i < hs; i++) dqkv[v + i] += p * dout[o + i];
                            }
                            for (int j = 0; j <= P + t; j = next(j, s0)) {
                                float d = a[r + j] * (ds[j] - dot) * scale;
                                int k = j < P ? pk(j, 0) + h * hs : (b * T + j - P) * C3 + C + h * hs;
                                float[] ks = j < P ? pe : qkv;
                                for (int i = 0; i < hs; i++) dqkv[q + i] += d * ks[k + i];
                                if (j < P) { if (g != null) for (int i = 0; i < hs; i++) g[k + i] += d * qkv[q + i]; }
                                else for (int i = 0; i < hs; i++) dqkv[k + i] += d * qkv[q + i];
                            }
                        }
                    }
                }
            });
        }
    }
}
