package ai.wafer.model;

import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.Weights;

/**
 * Token plus learned position embedding: x[b,t] = wte[token] + wpe[t]. The tables are read through
 * their storage ({@link Parameter#weights()}): heap, mapped from the file, or bf16.
 */
public final class Encoder {
    private Encoder() {}

    /**
     * x[b,t] = wte[token] + wpe[position], the position t + posOffset. With left padding ({@code start[b]}: row b's
     * first real token; null: none) positions count from each row's first real token, as Hugging Face's
     * position_ids = cumsum(mask) - 1, so a padded row embeds as unpadded; pads take position 0 (they never reach a
     * real token, see {@link Attention}). In generation ({@code past} not null) row b's tokens follow the past[b]
     * positions its KV cache holds.
     *
     * <p>A tensor-parallel rank's part: {@code wte} holds vocabulary rows [v0, v0 + rows) and tokens outside them
     * contribute zero; {@code wpe} null adds no positions. The ranks' parts sum to the whole (two non-zero terms, so
     * the sum is exact), whatever order an all-reduce adds them in.
     */
    public static void forward(float[] out, int[] tokens, int v0, Weights wte, Weights wpe, int B, int T, int C,
                               int posOffset, int[] start, int[] past) {
        long rows = wte.size() / C;
        Parallel.forRange(B * T, (w, from, to) -> {
            for (int bt = from; bt < to; bt++) {
                int tok = tokens[bt] - v0, t = position(bt, T, start) + posOffset + (past == null ? 0 : past[bt / T]);
                int o = bt * C;
                boolean here = tok >= 0 && tok < rows;
                long e = (long) tok * C, p = (long) t * C;
                for (int c = 0; c < C; c++) out[o + c] = (here ? wte.get(e + c) : 0f) + (wpe != null ? wpe.get(p + c) : 0f);
            }
        });
    }

    /**
     * dwte[token] += dout, dwpe[t] += dout, with the positions and the vocabulary rows [v0, v0 + rows) of dwte as in
     * {@link #forward} (other tokens are skipped); a frozen table (or wpe null) gets nothing. Tokens repeat, so rows collide: the work is split over channels
     * instead of rows, and each thread owns a slice of every row.
     */
    public static void backward(Parameter wte, Parameter wpe, float[] dout, int[] tokens, int v0, int B, int T, int C, int[] start) {
        int rows = wte.trainable() ? wte.size() / C : 0, eo = wte.off, po = wpe == null ? 0 : wpe.off;
        float[] dwte = wte.grad(), dwpe = wpe == null ? null : wpe.grad();
        Parallel.forRange(C, (w, from, to) -> {
            for (int bt = 0; bt < B * T; bt++) {
                int o = bt * C, tok = tokens[bt] - v0, e = eo + tok * C, p = po + position(bt, T, start) * C;
                if (tok >= 0 && tok < rows) for (int c = from; c < to; c++) dwte[e + c] += dout[o + c];
                if (dwpe != null) for (int c = from; c < to; c++) dwpe[p + c] += dout[o + c];
            }
        });
    }

    /** The position of flat index bt = b*T + t: t, less row b's left padding. */
    private static int position(int bt, int T, int[] start) {
        int t = bt % T;
        return start == null ? t : Math.max(0, t - start[bt / T]);
    }
}
