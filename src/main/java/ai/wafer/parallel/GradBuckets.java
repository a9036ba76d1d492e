package ai.wafer.parallel;

import ai.wafer.model.Parameter;

import java.util.ArrayList;
import java.util.List;

/**
 * The trainable parameters grouped into buckets of about {@code bucketBytes}, in reverse order (the
 * order backward produces their gradients), each with a flat buffer for exchanging them.
 *
 * <p>A bucket's flat length is padded to a multiple of the group size p, so that it splits into p
 * equal chunks: with ZeRO-1, rank r owns chunk r of every bucket (its optimiser moments and the
 * parameter update there), which spreads ownership evenly however the parameters are sized.
 */
final class GradBuckets {
    /** One bucket: params[i] occupies flat[start[i], start[i] + params[i].size()). */
    static final class Bucket {
        final List<Parameter> params = new ArrayList<>();
        int[] start;
        int length;   // unpadded
        int chunk;    // padded length / p
        float[] flat;

        int padded() { return flat.length; }

        void packGrads() {
            for (int i = 0; i < params.size(); i++) {
                float[] g = params.get(i).grad();
                System.arraycopy(g, 0, flat, start[i], g.length);
            }
        }

        void unpackGrads() {
            for (int i = 0; i < params.size(); i++) {
                float[] g = params.get(i).grad();
                System.arraycopy(flat, start[i], g, 0, g.length);
            }
        }

        /** Copies parameter values (not gradients) of flat range [lo, hi) between the flat buffer and the parameters. */
        void copyData(float[] buf, int lo, int hi, boolean toParams) {
            for (int i = 0; i < params.size(); i++) {
                int s = start[i], e = s + params.get(i).size();
                int a = Math.max(s, lo), b = Math.min(e, hi);
                if (a >= b) continue;
                float[] d = params.get(i).data;
                if (toParams) System.arraycopy(buf, a, d, a - s, b - a);
                else System.arraycopy(d, a - s, buf, a, b - a);
            }
        }
    }

    final List<Bucket> buckets = new ArrayList<>();
    final long elements;

    GradBuckets(List<Parameter> all, long bucketBytes, int p) {
        List<Parameter> trainable = new ArrayList<>();
        for (Parameter q : all) if (q.trainable()) trainable.add(q);
        Bucket cur = null;
        long n = 0;
        for (int i = trainable.size() - 1; i >= 0; i--) {
            Parameter q = trainable.get(i);
            if (cur == null || (cur.length > 0 && 4L * (cur.length + q.size()) > bucketBytes)) {
                if (cur != null) close(cur, p);
                cur = new Bucket();
                buckets.add(cur);
            }
            cur.params.add(q);
            cur.length += q.size();
            n += q.size();
        }
        if (cur != null) close(cur, p);
        elements = n;
    }

    /** Sums the gradients over {@code c}, bucket by bucket (packed, all-reduced, unpacked). */
    void allReduce(Communicator c) {
        for (Bucket b : buckets) {
            b.packGrads();
            c.allReduceSum(b.flat, 0, b.length);
            b.unpackGrads();
        }
    }

    private static void close(Bucket b, int p) {
        b.start = new int[b.params.size()];
        int off = 0;
        for (int i = 0; i < b.params.size(); i++) { b.start[i] = off; off += b.params.get(i).size(); }
        b.chunk = (b.length + p - 1) / p;
        b.flat = new float[b.chunk * p];
    }
}
