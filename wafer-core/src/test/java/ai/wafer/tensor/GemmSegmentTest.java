package ai.wafer.tensor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * B given as a native segment (how a frozen weight mapped from its checkpoint file arrives) computes exactly what
 * the same values in a heap array compute: same packing, same kernel, so bit for bit, on both implementations.
 */
class GemmSegmentTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @AfterEach
    void reset() { Gemm.setImpl(null); }

    @Test
    void nativeSegmentEqualsArrayOnEveryLayout() {
        for (Gemm.Impl impl : Gemm.Impl.values()) {
            Gemm.setImpl(impl);
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    check(ta, tb, 37, 45, 29, 0f, 0);
                    check(ta, tb, 130, 301, 270, 1f, 3); // crosses the K block, ragged tiles, above the threading threshold
                }
            }
        }
    }

    /** An odd byte offset: a safetensors header can leave float data unaligned. */
    @Test
    void unalignedSegment() {
        Gemm.setImpl(Gemm.Impl.JAVA);
        check(false, false, 9, 40, 33, 0f, 1);
        check(false, true, 9, 40, 33, 1f, 1);
    }

    @Test
    void outOfBoundsBIsAnErrorNotACrash() {
        if (!Blas.available()) return;
        Gemm.setImpl(Gemm.Impl.BLAS);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment b = arena.allocate(4L * 10 * 10);
            float[] a = new float[10 * 20], c = new float[10 * 20];
            assertThrows(IndexOutOfBoundsException.class,
                    () -> Kernels.current().matmul(false, false, 10, 20, 10, 1f, a, 0, 10, Weights.of(b), 0, 20, 0f, c, 0, 20));
        }
    }

    private static void check(boolean ta, boolean tb, int M, int N, int K, float beta, int byteShift) {
        Random r = new Random(M * 31L + N * 7L + K + (ta ? 1 : 0) + (tb ? 2 : 0));
        int lda = ta ? M : K, ldb = tb ? K + 2 : N + 3, off = 5;
        float[] A = rand(r, (ta ? K : M) * lda);
        float[] B = rand(r, off + (tb ? N : K) * ldb);
        float[] c0 = rand(r, M * N), c1 = c0.clone();
        Gemm.sgemm(ta, tb, M, N, K, 0.75f, A, 0, lda, B, off, ldb, beta, c0, 0, N);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment raw = arena.allocate(4L * B.length + byteShift);
            MemorySegment seg = raw.asSlice(byteShift, 4L * B.length);
            for (int i = 0; i < B.length; i++) seg.setAtIndex(F32, i, B[i]);
            Kernels.current().matmul(ta, tb, M, N, K, 0.75f, A, 0, lda, Weights.of(seg.asReadOnly()), off, ldb, beta, c1, 0, N);
        }
        assertArrayEquals(c0, c1, Gemm.impl() + " ta=" + ta + " tb=" + tb + " " + M + "x" + N + "x" + K);
    }

    private static float[] rand(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }
}
