/**
 * Decode attention over a KV cache (Attention.decodeCached): 12 heads of 64, 290 cached positions, one thread, best
 * of 2,000 calls. {@code java --add-modules jdk.incubator.vector -cp wafer-core/target/classes tools/CachedAttentionTiming.java}
 */
import ai.wafer.tensor.*;
public class CachedAttentionTiming {
    public static void main(String[] a) {
        int hs = 64, len = 290, cap = 320, H = 12;
        java.util.Random r = new java.util.Random(1);
        float[] k = new float[H * cap * hs], v = new float[H * cap * hs], q = new float[H * hs], out = new float[H * hs], sc = new float[cap];
        for (int i = 0; i < k.length; i++) { k[i] = (float) r.nextGaussian(); v[i] = (float) r.nextGaussian(); }
        for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
        for (int rep = 0; rep < 5; rep++) {
            long best = Long.MAX_VALUE;
            for (int it = 0; it < 2000; it++) {
                long t = System.nanoTime();
                for (int h = 0; h < H; h++) Attention.decodeCached(out, h * hs, q, h * hs, k, v, h * cap * hs, hs, len, 0.125f, sc);
                best = Math.min(best, System.nanoTime() - t);
            }
            System.out.printf("12 heads serial: %.1f us (%.2f us/head)%n", best / 1e3, best / 1e3 / H);
        }
    }
}
