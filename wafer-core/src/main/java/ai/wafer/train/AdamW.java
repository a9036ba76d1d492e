package ai.wafer.train;

import ai.wafer.model.Parameter;
import ai.wafer.tensor.Bf16Weights;
import ai.wafer.tensor.Kernels;
import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.VecMath;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW as PyTorch defines it: bias-corrected moments and decoupled weight decay
 * ({@code p -= lr*wd*p}, then {@code p -= lr * m_hat / (sqrt(v_hat) + eps)}), the decay applied
 * only to tensors of two or more dimensions. Moments exist for trainable parameters only.
 */
public final class AdamW {
    public record Hyper(float beta1, float beta2, float eps, float weightDecay) {
        public static Hyper defaults() { return new Hyper(0.9f, 0.95f, 1e-8f, 0.1f); }
    }

    private final List<Parameter> params = new ArrayList<>();
    private final List<float[]> m = new ArrayList<>(), v = new ArrayList<>();
    private final Hyper hp;
    private long step;

    public AdamW(List<Parameter> all, Hyper hp) {
        this.hp = hp;
        for (Parameter p : all) {
            if (!p.trainable()) continue;
            params.add(p);
            m.add(new float[p.size()]);
            v.add(new float[p.size()]);
        }
    }

    public Hyper hyper() { return hp; }
    public long stepCount() { return step; }
    public List<Parameter> parameters() { return params; }
    /** First and second moments, parallel to {@link #parameters()}; for checkpoints. */
    public List<float[]> firstMoments() { return m; }
    public List<float[]> secondMoments() { return v; }
    public void setStepCount(long s) { step = s; }

    /** The global L2 norm of all trainable gradients, accumulated in double. */
    public double gradNorm() {
        double s = 0;
        for (Parameter p : params) s += squaredSum(p.grad(), p.off, p.size());
        return Math.sqrt(s);
    }

    /**
     * The sum of g[off, off + n) squared, in double: blocks of {@link #BLOCK} values, each summed in vector lanes of
     * double, the blocks' sums added in order, so the bits do not depend on the number of threads. (One double add
     * after another, on one thread, took 150 ms of a 111M step: a chain of dependent adds.) Every gradient norm
     * (clipping, ZeRO-1's owned chunks, a tensor rank's shards) sums through this.
     */
    public static double squaredSum(float[] g, int off, int n) {
        int blocks = (n + BLOCK - 1) / BLOCK;
        if (blocks <= 1) return VecMath.squaredDeviations(g, off, n, 0);
        double[] sums = SUMS.get();
        if (sums.length < blocks) SUMS.set(sums = new double[blocks]);
        final double[] out = sums;
        Parallel.forRange(blocks, (t, from, to) -> {
            for (int b = from; b < to; b++) out[b] = VecMath.squaredDeviations(g, off + b * BLOCK, Math.min(BLOCK, n - b * BLOCK), 0);
        });
        double s = 0;
        for (int b = 0; b < blocks; b++) s += out[b];
        return s;
    }

    private static final int BLOCK = 1 << 14;
    private static final ThreadLocal<double[]> SUMS = ThreadLocal.withInitial(() -> new double[0]);

    /** PyTorch's clip_grad_norm_ factor for a global norm: min(1, clip / (norm + 1e-6)); 1 when clip <= 0 (off). */
    public static float clipScale(double norm, float clip) { return clip > 0 ? (float) Math.min(1.0, clip / (norm + 1e-6)) : 1f; }

    /**
     * Clips the gradients to a global norm of {@code clip} (PyTorch's clip_grad_norm_: scale =
     * min(1, clip / (norm + 1e-6)); off when clip <= 0), then takes one AdamW step at rate lr.
     * Returns the norm before clipping.
     */
    public double step(float lr, float clip) {
        double norm = gradNorm();
        apply(lr, clipScale(norm, clip));
        return norm;
    }

    /**
     * One AdamW step with the gradients scaled by {@code gscale}, for callers that assemble the clipping norm
     * themselves (a tensor-parallel shard sums its pieces over the ranks).
     */
    public void apply(float lr, float gscale) {
        step++;
        Kernels k = Kernels.current();
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            // a matrix the next pass multiplies in bf16 gets its rounding here, while the new values are in cache
            short[] bits = p.decays() ? k.nextPassWeights(p.data, p.off, p.size()) : null;
            update(p.data, p.off, p.grad(), p.off, m.get(i), v.get(i), 0, p.size(), lr * p.lrScale, p.decays(), gscale, hp, step, bits);
        }
    }

    /**
     * The AdamW update, the one implementation every optimiser path runs (whole parameters here, ZeRO-1
     * chunks and tensor shards in ai.wafer.parallel): w[wOff+i] from g[gOff+i] and the moments m, v at
     * [mOff+i], for i in [0, n), over the cores. {@code step} is the 1-based count for the bias corrections;
     * the weight decay applies when {@code decays}. Element-wise, so the threads do not change a bit. When
     * {@code bits} is not null, bits[i] receives w[wOff+i]'s new value rounded to bf16.
     */
    public static void update(float[] w, int wOff, float[] g, int gOff, float[] m, float[] v, int mOff, int n,
                              float lr, boolean decays, float gscale, Hyper hp, long step, short[] bits) {
        float b1 = hp.beta1(), b2 = hp.beta2(), eps = hp.eps();
        double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
        float decay = decays ? 1f - lr * hp.weightDecay() : 1f;
        Parallel.forRange(n, (t, from, to) -> range(w, wOff + from, g, gOff + from, m, v, mOff + from, to - from, lr, decay,
                gscale, b1, b2, eps, bc1, bc2, bits, from));
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** As many shorts as S has floats: S's bf16 roundings. */
    private static final VectorSpecies<Short> HALF_SHORTS = VectorSpecies.of(short.class, VectorShape.forBitSize(S.vectorBitSize() / 2));

    /**
     * The update of n elements from the given offsets, in PyTorch's single-tensor AdamW formula and precision:
     * {@code denom = sqrt(v) / sqrt(bc2) + eps}, {@code w = w (1 - lr wd) - (lr / bc1) m / denom}, all in float, the two
     * bias-correction factors computed in double and used as float scalars, as PyTorch's Python floats are. (Double
     * lanes, one divide and one square root of double per element, made the update compute-bound: 8 lanes a divide
     * against 16, at twice the cycles.) The scalar tail runs the same float operations, so every element gets the same
     * bits whether a vector or the tail updates it. With {@code bits}, bits[bo + i] gets the new w[wo + i] rounded to bf16
     * from the register that holds it (a second pass over each block, even from L1, cost 20-25 ms of a 111M step).
     */
    private static void range(float[] w, int wo, float[] g, int go, float[] m, float[] v, int mo, int n, float lr, float decay,
                              float gscale, float b1, float b2, float eps, double bc1, double bc2, short[] bits, int bo) {
        float stepSize = (float) (lr / bc1), bc2Sqrt = (float) Math.sqrt(bc2);
        int i = 0;
        for (int upper = S.loopBound(n); i < upper; i += S.length()) {
            FloatVector gj = FloatVector.fromArray(S, g, go + i).mul(gscale);
            FloatVector mj = FloatVector.fromArray(S, m, mo + i).mul(b1).add(gj.mul(1 - b1));
            FloatVector vj = FloatVector.fromArray(S, v, mo + i).mul(b2).add(gj.mul(1 - b2).mul(gj));
            mj.intoArray(m, mo + i);
            vj.intoArray(v, mo + i);
            FloatVector denom = vj.sqrt().div(bc2Sqrt).add(eps);
            FloatVector wj = FloatVector.fromArray(S, w, wo + i).mul(decay);
            wj = wj.sub(mj.mul(stepSize).div(denom));
            wj.intoArray(w, wo + i);
            if (bits != null) ((ShortVector) Bf16Weights.toBf16(wj).convertShape(VectorOperators.I2S, HALF_SHORTS, 0)).intoArray(bits, bo + i);
        }
        for (; i < n; i++) {
            float gj = g[go + i] * gscale;
            float mj = b1 * m[mo + i] + (1 - b1) * gj;
            float vj = b2 * v[mo + i] + (1 - b2) * gj * gj;
            m[mo + i] = mj;
            v[mo + i] = vj;
            float denom = (float) Math.sqrt(vj) / bc2Sqrt + eps;
            w[wo + i] = w[wo + i] * decay - mj * stepSize / denom;
            if (bits != null) bits[bo + i] = Bf16Weights.toBf16(w[wo + i]);
        }
    }
}
