package ai.wafer.parallel;

import ai.wafer.train.AdamW;

/**
 * The AdamW update of {@link AdamW#step}, element for element, for optimisers that hold only part of
 * the state (ZeRO-1 shards, tensor-parallel shards) and get the clipping norm from elsewhere.
 */
final class AdamWMath {
    private AdamWMath() {}

    /** PyTorch's clip_grad_norm_ factor. */
    static float clipScale(double norm, float clip) { return clip > 0 ? (float) Math.min(1.0, clip / (norm + 1e-6)) : 1f; }

    /**
     * w[wOff+i] updated from g[gOff+i] and moments m, v at [mOff+i], for i in [0, n); {@code step} is
     * the 1-based step count for the bias corrections; decay applies when {@code decays}.
     */
    static void update(float[] w, int wOff, float[] g, int gOff, float[] m, float[] v, int mOff, int n,
                       float lr, boolean decays, float gscale, AdamW.Hyper hp, long step) {
        float b1 = hp.beta1(), b2 = hp.beta2(), eps = hp.eps();
        double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
        float decay = decays ? 1f - lr * hp.weightDecay() : 1f;
        for (int i = 0; i < n; i++) {
            float gj = g[gOff + i] * gscale;
            float mj = b1 * m[mOff + i] + (1 - b1) * gj;
            float vj = b2 * v[mOff + i] + (1 - b2) * gj * gj;
            m[mOff + i] = mj;
            v[mOff + i] = vj;
            double mhat = mj / bc1, vhat = vj / bc2;
            w[wOff + i] = (float) (w[wOff + i] * decay - lr * mhat / (Math.sqrt(vhat) + eps));
        }
    }
}
