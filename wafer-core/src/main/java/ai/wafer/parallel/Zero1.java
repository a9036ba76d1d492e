package ai.wafer.parallel;

import ai.wafer.model.FlatStore;
import ai.wafer.model.Parameter;
import ai.wafer.train.AdamW;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * ZeRO-1 over a data-parallel group, shared by {@link DataParallelTrainer} and {@link ParallelTrainer}:
 * rank r of dp owns chunk r of every bucket of the {@link FlatStore}, keeps the AdamW moments for it alone,
 * updates the weights there with {@link AdamW#update}, and the updated chunks are all-gathered into every
 * replica. Everything happens in the store's buffers, in place. Same traffic as an all-reduce (a
 * reduce-scatter and an all-gather), moments cut by dp.
 */
final class Zero1 {
    /** A piece of the summed gradients this rank owns: grads[from, to) of the store, all inside parameter p. */
    interface Owned { void range(Parameter p, float[] grads, int from, int to); }

    private final Communicator dp;
    private final FlatStore store;
    private final AdamW.Hyper hp;
    private final float[][] m, v; // per bucket: moments of the owned chunk
    private long steps;

    Zero1(Communicator dp, FlatStore store, AdamW.Hyper hp) {
        this.dp = dp;
        this.store = store;
        this.hp = hp;
        int nb = store.buckets.size();
        m = new float[nb][];
        v = new float[nb][];
        for (int i = 0; i < nb; i++) {
            m[i] = new float[store.buckets.get(i).chunk()];
            v[i] = new float[store.buckets.get(i).chunk()];
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

    /** Sums every bucket's gradients over dp into this rank's chunk (the padding is zero, so it adds nothing to a norm). */
    void reduceScatter() {
        store.materializeZeros();
        for (FlatStore.Bucket b : store.buckets) dp.reduceScatterSum(store.grads, b.from(), b.chunk());
    }

    /** Visits the owned pieces of the summed gradients in store order (after {@link #reduceScatter}), parameter by parameter. */
    void forOwned(Owned o) {
        for (FlatStore.Bucket b : store.buckets) {
            int lo = b.from() + dp.rank() * b.chunk(), hi = lo + b.chunk();
            for (int q = b.first(); q < b.end(); q++) {
                int a = Math.max(store.at[q], lo), e = Math.min(store.at[q] + store.params.get(q).size(), hi);
                if (a < e) o.range(store.params.get(q), store.grads, a, e);
            }
        }
    }

    /** AdamW on the owned chunks with the gradients scaled by gscale, then the weights all-gathered into every replica. */
    void update(float lr, float gscale) {
        steps++;
        for (int i = 0; i < store.buckets.size(); i++) {
            FlatStore.Bucket b = store.buckets.get(i);
            int lo = b.from() + dp.rank() * b.chunk(), hi = lo + b.chunk();
            for (int q = b.first(); q < b.end(); q++) {
                Parameter p = store.params.get(q);
                int a = Math.max(store.at[q], lo), e = Math.min(store.at[q] + p.size(), hi);
                if (a < e) AdamW.update(store.values, a, store.grads, a, m[i], v[i], a - lo, e - a, lr * p.lrScale, p.decays(), gscale, hp, steps, null);
            }
            dp.allGather(store.values, b.from(), b.chunk());
        }
    }

    /**
     * The whole moments, into arrays parallel to {@code params} (which lists every stored parameter), from every
     * rank's chunks: a collective over dp, for checkpoints.
     */
    void gather(List<Parameter> params, List<float[]> mOut, List<float[]> vOut) {
        Map<Parameter, Integer> at = index(params);
        for (int i = 0; i < store.buckets.size(); i++) {
            FlatStore.Bucket b = store.buckets.get(i);
            float[] buf = new float[b.chunk() * dp.size()];
            for (int which = 0; which < 2; which++) {
                System.arraycopy(which == 0 ? m[i] : v[i], 0, buf, dp.rank() * b.chunk(), b.chunk());
                dp.allGather(buf, 0, b.chunk());
                for (int q = b.first(); q < b.end(); q++) {
                    float[] dst = (which == 0 ? mOut : vOut).get(at.get(store.params.get(q)));
                    System.arraycopy(buf, store.at[q] - b.from(), dst, 0, dst.length);
                }
            }
        }
    }

    /** This rank's chunks, cut from whole moments parallel to {@code params}, and the step count that goes with them. */
    void scatter(List<Parameter> params, List<float[]> mIn, List<float[]> vIn, long stepCount) {
        Map<Parameter, Integer> at = index(params);
        for (int i = 0; i < store.buckets.size(); i++) {
            FlatStore.Bucket b = store.buckets.get(i);
            int lo = b.from() + dp.rank() * b.chunk(), hi = lo + b.chunk();
            for (int q = b.first(); q < b.end(); q++) {
                int s = store.at[q], e = s + store.params.get(q).size(), a = Math.max(s, lo), z = Math.min(e, hi);
                if (a >= z) continue;
                int j = at.get(store.params.get(q));
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
