package ai.wafer.parallel;

import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * ZeRO-1 over a data-parallel group, shared by {@link DataParallelTrainer} and {@link ParallelTrainer}:
 * rank r of dp owns chunk r of every gradient bucket, keeps the AdamW moments for it alone, updates the
 * weights there with {@link AdamW#update}, and the updated chunks are all-gathered into every replica.
 * Same traffic as an all-reduce (a reduce-scatter and an all-gather), moments cut by dp.
 */
final class Zero1 {
    /** A piece of the summed gradients this rank owns: flat[from, to) of a bucket, all inside parameter p. */
    interface Owned { void range(Parameter p, float[] flat, int from, int to); }

    private final Communicator dp;
    private final GradBuckets buckets;
    private final AdamW.Hyper hp;
    private final float[][] m, v, w; // per bucket: moments of the owned chunk; the padded weights
    private long steps;

    Zero1(Communicator dp, GradBuckets buckets, AdamW.Hyper hp) {
        this.dp = dp;
        this.buckets = buckets;
        this.hp = hp;
        int nb = buckets.buckets.size();
        m = new float[nb][];
        v = new float[nb][];
        w = new float[nb][];
        for (int i = 0; i < nb; i++) {
            GradBuckets.Bucket b = buckets.buckets.get(i);
            m[i] = new float[b.chunk];
            v[i] = new float[b.chunk];
            w[i] = new float[b.padded()];
        }
    }

    /** AdamW steps taken (the bias corrections' count). */
    long steps() { return steps; }

    /** Floats of optimiser state on this rank. */
    long stateFloats() {
        long n = 0;
        for (float[] a : m) n += 2L * a.length;
        return n;
    }

    /** Sums every bucket's gradients over dp into this rank's chunk; the padding is zeroed so it adds nothing to a norm. */
    void reduceScatter() {
        for (GradBuckets.Bucket b : buckets.buckets) {
            b.packGrads();
            Arrays.fill(b.flat, b.length, b.flat.length, 0f);
            dp.reduceScatterSum(b.flat, 0, b.chunk);
        }
    }

    /** Visits the owned pieces of the summed gradients in flat order (after {@link #reduceScatter}), parameter by parameter. */
    void forOwned(Owned o) {
        int r = dp.rank();
        for (GradBuckets.Bucket b : buckets.buckets) {
            int lo = r * b.chunk, hi = lo + b.chunk;
            for (int q = 0; q < b.params.size(); q++) {
                int a = Math.max(b.start[q], lo), e = Math.min(b.start[q] + b.params.get(q).size(), hi);
                if (a < e) o.range(b.params.get(q), b.flat, a, e);
            }
        }
    }

    /** AdamW on the owned chunks with the gradients scaled by gscale, then the weights all-gathered into every replica. */
    void update(float lr, float gscale) {
        steps++;
        int r = dp.rank();
        for (int i = 0; i < buckets.buckets.size(); i++) {
            GradBuckets.Bucket b = buckets.buckets.get(i);
            int lo = r * b.chunk, hi = lo + b.chunk;
            float[] wi = w[i];
            b.copyData(wi, lo, hi, false);
            for (int q = 0; q < b.params.size(); q++) {
                Parameter p = b.params.get(q);
                int a = Math.max(b.start[q], lo), e = Math.min(b.start[q] + p.size(), hi);
                if (a < e) AdamW.update(wi, a, b.flat, a, m[i], v[i], a - lo, e - a, lr * p.lrScale, p.decays(), gscale, hp, steps);
            }
            dp.allGather(wi, 0, b.chunk);
            b.copyData(wi, 0, b.length, true);
        }
    }

    /**
     * The whole moments, into arrays parallel to {@code params} (which lists every bucketed parameter), from every
     * rank's chunks: a collective over dp, for checkpoints.
     */
    void gather(List<Parameter> params, List<float[]> mOut, List<float[]> vOut) {
        Map<Parameter, Integer> at = index(params);
        int r = dp.rank();
        for (int i = 0; i < buckets.buckets.size(); i++) {
            GradBuckets.Bucket b = buckets.buckets.get(i);
            for (int which = 0; which < 2; which++) {
                System.arraycopy(which == 0 ? m[i] : v[i], 0, b.flat, r * b.chunk, b.chunk);
                dp.allGather(b.flat, 0, b.chunk);
                for (int q = 0; q < b.params.size(); q++) {
                    float[] dst = (which == 0 ? mOut : vOut).get(at.get(b.params.get(q)));
                    System.arraycopy(b.flat, b.start[q], dst, 0, dst.length);
                }
            }
        }
    }

    /** This rank's chunks, cut from whole moments parallel to {@code params}, and the step count that goes with them. */
    void scatter(List<Parameter> params, List<float[]> mIn, List<float[]> vIn, long stepCount) {
        Map<Parameter, Integer> at = index(params);
        int r = dp.rank();
        for (int i = 0; i < buckets.buckets.size(); i++) {
            GradBuckets.Bucket b = buckets.buckets.get(i);
            int lo = r * b.chunk, hi = lo + b.chunk;
            for (int q = 0; q < b.params.size(); q++) {
                int s = b.start[q], e = s + b.params.get(q).size(), a = Math.max(s, lo), z = Math.min(e, hi);
                if (a >= z) continue;
                int j = at.get(b.params.get(q));
                System.arraycopy(mIn.get(j), a - s, m[i], a - lo, z - a);
                System.arraycopy(vIn.get(j), a - s, v[i], a - lo, z - a);
            }
        }
        steps = stepCount;
    }

    private static Map<Parameter, Integer> index(List<Parameter> params) {
        Map<Parameter, Integer> at = new IdentityHashMap<>();
        for (int i = 0; i < params.size(); i++) at.put(params.get(i), i);
        return at;
    }
}
