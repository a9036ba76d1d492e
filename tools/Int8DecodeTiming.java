/**
 * The 41 weight products of one Cerebras-GPT 111M decoding step (10 blocks of four Conv1D products [in, out] and the
 * tied head [V, d]) in int8 and bf16, random weights, nothing else: ms a token and GB/s of weights, best of the rounds.
 * {@code WAFER_THREADS=2 java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx6g
 * -cp "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/Int8DecodeTiming.java [ROUNDS]}
 */
import ai.wafer.tensor.*;
import java.util.Random;

public class Int8DecodeTiming {
    public static void main(String[] a) {
        int rounds = a.length > 0 ? Integer.parseInt(a[0]) : 5;
        Random r = new Random(1);
        int d = 768, V = 50257;
        // a 111M-like stack: 10 layers x (c_attn 768x2304, proj 768x768, fc 768x3072, proj 3072x768) [in,out] + head [V, d] rows
        int[][] shapes = {{d, 3 * d}, {d, d}, {d, 4 * d}, {4 * d, d}};
        Weights[] i8 = new Weights[41], b16 = new Weights[41];
        int[][] dims = new int[41][];
        for (int l = 0; l < 10; l++) for (int s = 0; s < 4; s++) {
            int K = shapes[s][0], N = shapes[s][1];
            float[] w = new float[K * N];
            for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.02f;
            Weights f = Weights.of(w);
            i8[l * 4 + s] = Int8Weights.of(f, K, N, true, 0);
            b16[l * 4 + s] = Bf16Weights.of(f);
            dims[l * 4 + s] = new int[] {K, N, 0};
        }
        float[] h = new float[V * d];
        for (int i = 0; i < h.length; i++) h[i] = (float) r.nextGaussian() * 0.02f;
        Weights fh = Weights.of(h);
        i8[40] = Int8Weights.of(fh, V, d, false, 0);
        b16[40] = Bf16Weights.of(fh);
        dims[40] = new int[] {d, V, 1};
        h = null;
        float[] x = new float[4 * d], out = new float[V];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (String kind : new String[] {"int8", "bf16", "int8", "bf16"}) {
            Weights[] ws = kind.equals("int8") ? i8 : b16;
            double best = 1e9, bestBlocks = 1e9, bestHead = 1e9;
            for (int round = 0; round < rounds * 10; round++) {
                long t0 = System.nanoTime();
                for (int m = 0; m < 40; m++) ws[m].decode(false, 1, dims[m][1], dims[m][0], x, out);
                long t1 = System.nanoTime();
                ws[40].decode(true, 1, V, d, x, out);
                long t2 = System.nanoTime();
                best = Math.min(best, (t2 - t0) / 1e6); bestBlocks = Math.min(bestBlocks, (t1 - t0) / 1e6); bestHead = Math.min(bestHead, (t2 - t1) / 1e6);
            }
            long bb = 0; for (int m = 0; m < 40; m++) bb += ws[m].bytes();
            System.out.printf("%s: token %.2f ms (%.0f tok/s); blocks %.2f ms %.1f GB/s; head %.2f ms %.1f GB/s%n", kind, best, 1000 / best,
                    bestBlocks, bb / bestBlocks / 1e6, bestHead, ws[40].bytes() / bestHead / 1e6);
        }
    }
}
