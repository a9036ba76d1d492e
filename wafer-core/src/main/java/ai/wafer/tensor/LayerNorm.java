package ai.wafer.tensor;

/**
 * LayerNorm over the last dimension C, forward and backward side by side (as in llm.c).
 * Row statistics are accumulated in double: the fixtures demand 1e-4 relative after many layers.
 */
public final class LayerNorm {
    private LayerNorm() {}

    /** out[N,C] = (inp - mean) * rstd * w + b (w at wo, b at bo); saves mean[N] and rstd[N] for the backward pass. */
    public static void forward(float[] out, float[] mean, float[] rstd, float[] inp, float[] w, int wo, float[] b, int bo,
                               int N, int C, float eps) {
        Parallel.forRange(N, (worker, from, to) -> {
            for (int i = from; i < to; i++) {
                int o = i * C;
                double s = 0;
                for (int c = 0; c < C; c++) s += inp[o + c];
                double m = s / C;
                double v = 0;
                for (int c = 0; c < C; c++) { double d = inp[o + c] - m; v += d * d; }
                double r = 1.0 / Math.sqrt(v / C + eps);
                float mf = (float) m, rf = (float) r;
                for (int c = 0; c < C; c++) out[o + c] = (inp[o + c] - mf) * rf * w[wo + c] + b[bo + c];
                mean[i] = mf;
                rstd[i] = rf;
            }
        });
    }

    /**
     * dinp[N,C] += gradient through the normalisation; dw (at wo, as w) and db (at bo) accumulate, each skipped when null.
     * dw/db sums run over rows, so each worker keeps its own partial sums in {@code scratch}
     * ([threads, 2C]) and they are added in a fixed order: the result does not depend on timing.
     */
    public static void backward(float[] dinp, float[] dout, float[] inp, float[] w, float[] dw, int wo, float[] db, int bo,
                                float[] mean, float[] rstd, int N, int C, float[] scratch) {
        int threads = Parallel.threads();
        java.util.Arrays.fill(scratch, 0, threads * 2 * C, 0f);
        Parallel.forRange(N, (worker, from, to) -> {
            int so = worker * 2 * C;
            for (int i = from; i < to; i++) {
                int o = i * C;
                float m = mean[i], r = rstd[i];
                // the two means of the LayerNorm gradient formula
                double dnormMean = 0, dnormNormMean = 0;
                for (int c = 0; c < C; c++) {
                    float norm = (inp[o + c] - m) * r;
                    float dnorm = w[wo + c] * dout[o + c];
                    dnormMean += dnorm;
                    dnormNormMean += dnorm * norm;
                }
                float a = (float) (dnormMean / C), bb = (float) (dnormNormMean / C);
                for (int c = 0; c < C; c++) {
                    float norm = (inp[o + c] - m) * r;
                    float dnorm = w[wo + c] * dout[o + c];
                    dinp[o + c] += (dnorm - a - norm * bb) * r;
                    scratch[so + c] += dout[o + c] * norm;
                    scratch[so + C + c] += dout[o + c];
                }
            }
        });
        for (int t = 0; t < threads; t++) {
            int so = t * 2 * C;
            if (dw != null) for (int c = 0; c < C; c++) dw[wo + c] += scratch[so + c];
            if (db != null) for (int c = 0; c < C; c++) db[bo + c] += scratch[so + C + c];
        }
    }
}
