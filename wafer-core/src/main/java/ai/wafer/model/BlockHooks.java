package ai.wafer.model;

/**
 * Optional extra computation inside one transformer block, for parameter-efficient fine-tuning.
 * Every field starts null (the plain GPT-2 block); a method from {@code ai.wafer.peft} fills the ones it
 * needs. Each hook keeps what its own backward needs, so {@link Gpt} only calls it in the right place:
 *
 * <pre>
 *   qkv   = c_attn(ln_1(x))      (+ cAttn: low-rank update of the same input)
 *   qkv   = qkvScale(qkv)        ((IA)3: keys and values scaled)
 *   y     = attention(qkv)       (or prefix: attention over trainable key/value prefixes too)
 *   a     = attn.c_proj(y)       (+ attnProj)
 *   a     = afterAttn(a)         (bottleneck adapter)
 *   x     = x + a
 *   f     = act(c_fc(ln_2(x)))   (+ cFc before the activation)
 *   f     = mlpAct(f)            ((IA)3: the MLP activation scaled)
 *   m     = mlp.c_proj(f)        (+ mlpProj)
 *   m     = afterMlp(m)          (bottleneck adapter)
 *   x     = x + m
 * </pre>
 */
public final class BlockHooks {
    /** Adds a learned update to a linear layer's output: out[N,OC] += delta(inp[N,C]). */
    public interface LinearAdapter {
        void forward(float[] out, float[] inp, int N);

        /** Adds the update's input gradient into dinp and its parameter gradients into their grads. */
        void backward(float[] dinp, float[] dout, float[] inp, int N);
    }

    /** Transforms an activation in place: x[N,*] = f(x). */
    public interface InPlace {
        void forward(float[] x, int N);

        /** dx = dout * f'(x_before); dx may be the same array as dout. */
        void backward(float[] dx, float[] dout, int N);
    }

    /** Attention over P learned key/value positions before the sequence (prefix tuning). */
    public interface Prefix {
        int length();

        /** {@code start}: each row's first real token under left padding, or null (as in {@code Attention}). */
        void forward(float[] out, float[] qkv, int B, int T, int C, int H, float scale, int[] start);

        /** Overwrites dqkv with the gradient of qkv; adds the prefixes' gradients to their grads. */
        void backward(float[] dqkv, float[] dout, float[] qkv, int B, int T, int C, int H, float scale, int[] start);
    }

    public LinearAdapter cAttn, attnProj, cFc, mlpProj;
    public InPlace qkvScale, mlpAct, afterAttn, afterMlp;
    public Prefix prefix;

    public boolean isEmpty() {
        return cAttn == null && attnProj == null && cFc == null && mlpProj == null && qkvScale == null
                && mlpAct == null && afterAttn == null && afterMlp == null && prefix == null;
    }
}
