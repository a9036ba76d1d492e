package ai.wafer.generate;

import ai.wafer.model.KvCache;
import ai.wafer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Beam search: keeps the numBeams most likely continuations (by summed log-probability), decoded
 * together in one batch. A continuation ends at a stop token or the length limit; among finished
 * ones the best by score / length wins (Hugging Face's length_penalty 1). Sampling options do not
 * apply; stop strings cut the final text.
 */
final class BeamSearch {
    private BeamSearch() {}

    private record Hyp(int[] tokens, double score, FinishReason reason) {
        double normalized() { return score / Math.max(1, tokens.length + (reason == FinishReason.STOP ? 1 : 0)); }
    }

    static Generator.Result run(InferenceModel model, Tokenizer tok, int[] prompt, SamplingParams p) {
        int k = p.numBeams(), V = model.vocabSize(), capacity = Sequence.capacity(model, prompt, p);
        int maxNew = capacity - prompt.length;
        if (maxNew == 0) return new Generator.Result(new int[0], "", FinishReason.LENGTH, prompt.length, 0, 0);
        int[] stopIds = p.stopTokens().stream().mapToInt(Integer::intValue).sorted().toArray();
        KvCache[] cur = new KvCache[k], next = new KvCache[k];
        for (int i = 0; i < k; i++) { cur[i] = model.newCache(capacity); next[i] = model.newCache(capacity); }
        int[][] toks = new int[k][maxNew], nextToks = new int[k][maxNew];
        double[] score = new double[k], nextScore = new double[k];
        float[] logits = new float[k * V];
        long t0 = System.nanoTime();
        model.prefill(cur[0], prompt, 0, prompt.length, logits);
        long t1 = System.nanoTime();
        int live = 1, len = 0;
        List<Hyp> done = new ArrayList<>();
        int cands = 2 * k;
        double[] cScore = new double[cands];
        int[] cBeam = new int[cands], cTok = new int[cands];
        int[] last = new int[k];
        while (true) {
            // the 2k best (beam, token) extensions by total log-probability, best first
            int nc = 0;
            Arrays.fill(cScore, Double.NEGATIVE_INFINITY);
            for (int b = 0; b < live; b++) {
                int off = b * V;
                float max = Float.NEGATIVE_INFINITY;
                for (int v = 0; v < V; v++) max = Math.max(max, logits[off + v]);
                double sum = 0;
                for (int v = 0; v < V; v++) sum += Math.exp(logits[off + v] - max);
                double lse = max + Math.log(sum);
                for (int v = 0; v < V; v++) {
                    double s = score[b] + logits[off + v] - lse;
                    if (s <= cScore[cands - 1]) continue;
                    int j = Math.min(nc, cands - 1);
                    while (j > 0 && cScore[j - 1] < s) { cScore[j] = cScore[j - 1]; cBeam[j] = cBeam[j - 1]; cTok[j] = cTok[j - 1]; j--; }
                    cScore[j] = s; cBeam[j] = b; cTok[j] = v;
                    if (nc < cands) nc++;
                }
            }
            int nl = 0;
            for (int c = 0; c < nc && nl < k; c++) {
                int b = cBeam[c];
                if (Arrays.binarySearch(stopIds, cTok[c]) >= 0) {
                    if (c < k) done.add(new Hyp(Arrays.copyOf(toks[b], len), cScore[c], FinishReason.STOP));
                    continue;
                }
                System.arraycopy(toks[b], 0, nextToks[nl], 0, len);
                nextToks[nl][len] = cTok[c];
                nextScore[nl] = cScore[c];
                next[nl].copyFrom(cur[b]);
                nl++;
            }
            len++;
            KvCache[] tc = cur; cur = next; next = tc;
            int[][] tt = toks; toks = nextToks; nextToks = tt;
            double[] ts = score; score = nextScore; nextScore = ts;
            live = nl;
            if (len >= maxNew || live == 0) {
                for (int b = 0; b < live; b++) done.add(new Hyp(Arrays.copyOf(toks[b], len), score[b], FinishReason.LENGTH));
                break;
            }
            if (done.size() >= k) {
                // no live beam can still beat the worst of the k best finished ones (scores only fall)
                done.sort((a, b) -> Double.compare(b.normalized(), a.normalized()));
                double worst = done.get(k - 1).normalized();
                double bestLive = score[0] / (len + 1); // score[0] is the best live beam
                if (bestLive <= worst) break;
            }
            for (int b = 0; b < live; b++) last[b] = toks[b][len - 1];
            model.decode(cur, last, live, logits);
        }
        long t2 = System.nanoTime();
        Hyp best = done.get(0);
        for (Hyp h : done) if (h.normalized() > best.normalized()) best = h;
        String text = "";
        FinishReason reason = best.reason;
        if (tok != null) {
            text = tok.decode(best.tokens);
            int at = -1;
            for (String s : p.stop()) { int i = text.indexOf(s); if (i >= 0 && (at < 0 || i < at)) at = i; }
            if (at >= 0) { text = text.substring(0, at); reason = FinishReason.STOP; }
        }
        return new Generator.Result(best.tokens, text, reason, prompt.length, t1 - t0, t2 - t1);
    }
}
