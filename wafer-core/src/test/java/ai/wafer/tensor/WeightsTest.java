package ai.wafer.tensor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every storage's products against a double-precision dot product of the same (bf16-rounded) weights: every weight
 * meets its own input, whatever the packing (pairs in an int, evens/odds split, column blocks), on odd and even
 * shapes, full and partial tiles and blocks, one to three input rows; for the decode kernel in both layouts
 * ([in, out] as a Conv1D weight is stored, [out, in] rows as the LM head) and for the GEMM of prefill, on both
 * kernel implementations.
 */
class WeightsTest {
    @AfterEach
    void reset() { Gemm.setImpl(null); }

    /** A storage of the K x N values w (quantized kinds may group their scales by that shape). */
    private interface Maker { Weights make(float[] w, int K, int N); }

    private record Kind(String name, Maker make, boolean rounds) {
        Kind(String name, Function<float[], Weights> make, boolean rounds) { this(name, (w, K, N) -> make.apply(w), rounds); }
    }

    private static List<Kind> kinds(Arena arena) {
        List<Kind> int8 = new java.util.ArrayList<>();
        for (int g : new int[] {0, 32, 64, 128}) {
            int8.add(new Kind("int8 group " + g + ", per column", (w, K, N) -> Int8Weights.of(Weights.of(w), K, N, true, g), true));
            int8.add(new Kind("int8 group " + g + ", per row", (w, K, N) -> Int8Weights.of(Weights.of(w), N, K, false, g), true));
        }
        for (boolean perColumn : new boolean[] {true, false}) // as in a mapped file: native, unaligned segments
            int8.add(new Kind("mapped int8 group 32, per " + (perColumn ? "column" : "row"), (w, K, N) -> {
                Int8Weights h = Int8Weights.of(Weights.of(w), perColumn ? K : N, perColumn ? N : K, perColumn, 32);
                return new Int8Weights(unaligned(arena, h.quantized()), unaligned(arena, h.scales()), perColumn ? K : N, perColumn ? N : K, perColumn, 32);
            }, true));
        return java.util.stream.Stream.concat(int8.stream(), Stream.of(new Kind("f32", Weights::of, false), new Kind("bf16", Bf16Weights::of, true),
                new Kind("f32 slice of a flat store", w -> { // at an offset, with other values around it
                    float[] store = new float[w.length + 40];
                    java.util.Arrays.fill(store, Float.NaN);
                    System.arraycopy(w, 0, store, 17, w.length);
                    return new F32Weights(store, 17, w.length);
                }, false),
                new Kind("mapped bf16", w -> half(arena, w, true), true),
                new Kind("mapped fp16", w -> half(arena, w, false), true),
                new Kind("mapped f32", w -> {
                    MemorySegment s = arena.allocate(4L * w.length + 1).asSlice(1, 4L * w.length); // unaligned, as in a file
                    for (int i = 0; i < w.length; i++) s.setAtIndex(MappedF32Weights.LE, i, w[i]);
                    return Weights.of(s.asReadOnly());
                }, false))).toList();
    }

    private static MemorySegment unaligned(Arena arena, MemorySegment s) {
        return arena.allocate(s.byteSize() + 1).asSlice(1, s.byteSize()).copyFrom(s).asReadOnly();
    }

    /**
     * Every value is its byte times the scale of its output channel and group of inputs (indexed here, not by the class),
     * that scale is the group's max |w| / 127, and the value is within half a scale of w; odd shapes, where the last
     * group is partial. A group size the kernels cannot take is refused.
     */
    @Test
    void int8GroupsKeepEachValueWithinHalfItsScale() {
        Random r = new Random(3);
        int rows = 100, cols = 37;
        float[] w = rand(r, rows * cols);
        var le = MappedF32Weights.LE;
        for (int g : new int[] {0, 32, 64, 128}) {
            for (boolean perColumn : new boolean[] {true, false}) {
                Int8Weights q = Int8Weights.of(Weights.of(w), rows, cols, perColumn, g);
                int in = perColumn ? rows : cols, G = g == 0 ? in : g, groups = (in + G - 1) / G;
                float[] back = new float[w.length];
                q.read(0, back, 0, w.length);
                for (int i = 0; i < w.length; i++) {
                    int row = i / cols, col = i % cols, k = perColumn ? row : col; // k: the input index
                    long si = perColumn ? (long) (k / G) * cols + col : (long) row * groups + k / G;
                    float max = 0;
                    for (int j = 0; j < w.length; j++) {
                        int jr = j / cols, jc = j % cols;
                        if (perColumn ? jc == col && jr / G == k / G : jr == row && jc / G == k / G) max = Math.max(max, Math.abs(w[j]));
                    }
                    float scale = q.scales().getAtIndex(le, si), want = q.quantized().getAtIndex(java.lang.foreign.ValueLayout.JAVA_BYTE, i) * scale;
                    String what = "group " + g + (perColumn ? " per column" : " per row") + " value " + i;
                    assertEquals(max / 127f, scale, 1e-7f * max, what + " scale");
                    assertEquals(want, q.get(i), 0f, what);
                    assertEquals(want, back[i], 0f, what + " read");
                    assertEquals(w[i], want, scale / 2 * 1.0001, what);
                }
                assertEquals(w.length + 4L * groups * (perColumn ? cols : rows), q.bytes());
                assertEquals(g, q.groupSize());
            }
        }
        assertThrows(IllegalArgumentException.class, () -> Int8Weights.of(Weights.of(w), rows, cols, true, 20));
    }

    /** w rounded to bf16 or fp16 in an unaligned segment of little-endian words, as in a mapped checkpoint. */
    private static Weights half(Arena arena, float[] w, boolean bf16) {
        MemorySegment s = arena.allocate(2L * w.length + 1).asSlice(1, 2L * w.length);
        var le = java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < w.length; i++) s.setAtIndex(le, i, bf16 ? Bf16Weights.toBf16(w[i]) : Float.floatToFloat16(w[i]));
        return bf16 ? Bf16Weights.of(s.asReadOnly()) : new MappedHalfWeights(s.asReadOnly());
    }

    /** read (what the GEMMs pack through, vectorized) gives get's values from any start, across rows and groups. */
    @Test
    void readMatchesGetFromAnyStart() {
        Random r = new Random(11);
        try (Arena arena = Arena.ofShared()) {
            for (Kind kind : kinds(arena)) {
                for (int[] shape : new int[][] {{70, 130}, {128, 96}, {33, 17}}) {
                    int K = shape[0], N = shape[1];
                    Weights W = kind.make.make(rand(r, K * N), K, N);
                    for (int t = 0; t < 40; t++) {
                        int from = r.nextInt(K * N), n = r.nextInt(Math.min(K * N - from, 3 * N) + 1);
                        float[] got = new float[n + 3];
                        W.read(from, got, 3, n);
                        for (int i = 0; i < n; i++)
                            assertEquals(W.get(from + i), got[3 + i], kind.name + " " + K + "x" + N + " read(" + from + ", " + n + ") at " + i);
                    }
                }
            }
        }
    }

    @Test
    void productsMatchADoubleDotProduct() {
        Random r = new Random(7);
        try (Arena arena = Arena.ofShared()) {
            for (Kind kind : kinds(arena)) {
                for (int K : new int[] {1, 6, 31, 32, 33, 64, 100, 768}) {
                    for (int N : new int[] {1, 5, 8, 13, 64, 130}) {
                        for (int n = 1; n <= 3; n++) check(r, kind, K, N, n);
                    }
                }
            }
        }
    }

    private static void check(Random r, Kind kind, int K, int N, int n) {
        float[] w = rand(r, K * N), x = rand(r, n * K);
        Weights W = kind.make.make(w, K, N);
        assertEquals(w.length, W.size());
        for (boolean rows : new boolean[] {false, true}) {
            // rows: W is [N, K] (out[j] = row j . x); else W is [K, N] (out[j] = column j . x)
            float[] out = new float[n * N];
            W.decode(rows, n, N, K, x, out);
            String what = kind.name + (rows ? " rows" : " [in,out]") + " K " + K + " N " + N + " n " + n;
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < N; j++) {
                    double want = 0;
                    for (int k = 0; k < K; k++) {
                        float wv = w[rows ? j * K + k : k * N + j];
                        if (kind.rounds) wv = W.get(rows ? j * K + k : k * N + j); // the storage's own (rounded) value
                        want += (double) wv * x[i * K + k];
                    }
                    assertEquals(want, out[i * N + j], 1e-4 * (1 + Math.sqrt(K)), what + " at [" + i + "," + j + "]");
                }
            }
            // the prefill path (the GEMM, packing straight from the storage) agrees, on both implementations
            for (Gemm.Impl impl : Gemm.Impl.values()) {
                Gemm.setImpl(impl);
                float[] g = new float[n * N];
                Kernels.current().matmul(false, rows, n, N, K, 1f, x, 0, K, W, 0, rows ? K : N, 1f, g, 0, N);
                for (int i = 0; i < g.length; i++) assertEquals(out[i], g[i], 1e-4 * (1 + Math.sqrt(K)), what + " gemm " + Gemm.impl());
            }
            Gemm.setImpl(null);
        }
    }

    /** Float32 heap weights through the storage are the array GEMM, bit for bit (training must not move). */
    @Test
    void heapF32MatmulIsTheArrayGemm() {
        Random r = new Random(3);
        for (Gemm.Impl impl : Gemm.Impl.values()) {
            Gemm.setImpl(impl);
            for (boolean tb : new boolean[] {false, true}) {
                int M = 70, N = 301, K = 270, ldb = tb ? K : N;
                float[] A = rand(r, M * K), B = rand(r, K * N), c0 = rand(r, M * N), c1 = c0.clone();
                Gemm.sgemm(false, tb, M, N, K, 1f, A, 0, K, B, 0, ldb, 1f, c0, 0, N);
                Kernels.current().matmul(false, tb, M, N, K, 1f, A, 0, K, Weights.of(B), 0, ldb, 1f, c1, 0, N);
                assertArrayEquals(c0, c1, impl + " tb=" + tb);
            }
        }
    }

    @Test
    void bf16RoundsToNearestEvenAndKeepsNaN() {
        assertEquals((short) 0x3F80, Bf16Weights.toBf16(1f));
        assertEquals((short) 0x3F80, Bf16Weights.toBf16(Float.intBitsToFloat(0x3F808000))); // tie to even (down)
        assertEquals((short) 0x3F82, Bf16Weights.toBf16(Float.intBitsToFloat(0x3F818000))); // tie to even (up)
        assertEquals((short) 0x3F81, Bf16Weights.toBf16(Float.intBitsToFloat(0x3F808001)));
        assertEquals(true, Float.isNaN(Bf16Weights.fromBf16(Bf16Weights.toBf16(Float.NaN))));
        float[] v = {1.5f, -2.25f, 3.0078125f};
        Bf16Weights b = Bf16Weights.of(v);
        assertEquals(6, b.bytes());
        float[] back = new float[3];
        b.read(0, back, 0, 3);
        assertArrayEquals(new float[] {1.5f, -2.25f, 3f}, back);
    }

    private static float[] rand(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }
}
