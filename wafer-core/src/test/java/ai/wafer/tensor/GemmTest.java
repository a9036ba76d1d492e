package ai.wafer.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class GemmTest {
    /** Which entry point a check drives. */
    private enum Path { JAVA_PARALLEL, JAVA_SERIAL, BLAS, DISPATCH }

    private static final int[] ODD = {1, 3, 7, 16, 33, 101};

    @AfterEach
    void resetImpl() { Gemm.setImpl(null); }

    @Test
    void javaParallelAllLayoutsOddSizes() { sweep(Path.JAVA_PARALLEL); }

    @Test
    void javaSerialAllLayoutsOddSizes() { sweep(Path.JAVA_SERIAL); }

    @Test
    void blasAllLayoutsOddSizes() {
        assumeTrue(Blas.available(), "OpenBLAS not installed");
        sweep(Path.BLAS);
    }

    @Test
    void dispatchHonoursSetter() {
        Gemm.setImpl(Gemm.Impl.JAVA);
        assertEquals(Gemm.Impl.JAVA, Gemm.impl());
        check(Path.DISPATCH, false, true, 37, 45, 29, 0.5f, 0f, 0, 0, 0, 0);
        Gemm.setImpl(Gemm.Impl.BLAS);
        assertEquals(Blas.available() ? Gemm.Impl.BLAS : Gemm.Impl.JAVA, Gemm.impl());
        check(Path.DISPATCH, true, false, 37, 45, 29, 0.5f, 1f, 0, 0, 0, 0);
    }

    /** Sizes that cross the K block (256), the M block and the N block, with multiple threads. */
    @Test
    void largeCrossesAllBlocks() {
        for (Path p : new Path[] {Path.JAVA_PARALLEL, Path.BLAS}) {
            if (p == Path.BLAS && !Blas.available()) continue;
            check(p, false, false, 300, 2100, 530, 1f, 0f, 0, 0, 0, 0);
            check(p, false, true, 157, 77, 600, 1f, 1f, 5, 3, 7, 1);
            check(p, true, false, 211, 333, 515, 0.25f, 0.5f, 0, 9, 0, 2);
            // above the threading threshold with ragged tiles on both split directions
            check(p, true, true, 133, 901, 77, -1f, 0f, 1, 2, 3, 4);
            check(p, false, false, 7, 1001, 333, 1f, 1f, 0, 1, 0, 5);
            check(p, true, false, 1001, 9, 301, 1f, 0f, 2, 0, 1, 0);
        }
    }

    /** The Java and BLAS paths agree closely on a layer-sized problem. */
    @Test
    void javaMatchesBlas() {
        assumeTrue(Blas.available(), "OpenBLAS not installed");
        int M = 128, N = 384, K = 768;
        Random r = new Random(7);
        float[] a = rand(r, M * K), b = rand(r, N * K), c1 = new float[M * N], c2 = new float[M * N];
        Gemm.sgemmJava(false, true, M, N, K, 1f, a, 0, K, b, null, 0, K, 0f, c1, 0, N, true);
        Blas.sgemm(false, true, M, N, K, 1f, a, 0, K, b, 0, K, 0f, c2, 0, N);
        for (int i = 0; i < c1.length; i++) {
            assertEquals(c2[i], c1[i], 1e-5 * (Math.abs(c2[i]) + 1) * 4, "index " + i);
        }
    }

    @Test
    void degenerateShapes() {
        for (Path p : Path.values()) {
            if (p == Path.BLAS && !Blas.available()) continue;
            // K = 0: C = beta * C; beta = 0 clears NaN
            float[] c = {Float.NaN, 2f, 3f, 4f};
            run(p, false, false, 2, 2, 0, 1f, new float[0], 0, 1, new float[0], 0, 2, 0f, c, 0, 2);
            assertArrayEquals(new float[] {0, 0, 0, 0}, c);
            c = new float[] {1f, 2f, 3f, 4f};
            run(p, false, false, 2, 2, 0, 1f, new float[0], 0, 1, new float[0], 0, 2, 2f, c, 0, 2);
            assertArrayEquals(new float[] {2, 4, 6, 8}, c);
            // M = 0 touches nothing
            c = new float[] {5f};
            run(p, false, false, 0, 1, 3, 1f, new float[3], 0, 3, new float[3], 0, 1, 0f, c, 0, 1);
            assertArrayEquals(new float[] {5f}, c);
        }
    }

    @Test
    void blasRejectsOutOfBoundsInsteadOfCrashing() {
        assumeTrue(Blas.available(), "OpenBLAS not installed");
        assertThrows(IndexOutOfBoundsException.class,
                () -> Blas.sgemm(false, false, 4, 4, 4, 1f, new float[15], 0, 4, new float[16], 0, 4, 0f, new float[16], 0, 4));
    }

    private static void sweep(Path p) {
        Random r = new Random(42);
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                for (int M : ODD) {
                    for (int N : ODD) {
                        for (int K : ODD) {
                            // vary alpha/beta/offsets/padding deterministically but not uniformly
                            int v = r.nextInt(4);
                            float alpha = v == 0 ? 1f : v == 1 ? -0.5f : 2f;
                            float beta = switch (v) { case 0 -> 0f; case 1 -> 1f; case 2 -> 0f; default -> -0.75f; };
                            int padA = r.nextInt(3) * 5, padB = r.nextInt(3) * 3, padC = r.nextInt(2) * 17;
                            check(p, ta == 1, tb == 1, M, N, K, alpha, beta, r.nextInt(4), padA, padB, padC);
                        }
                    }
                }
            }
        }
    }

    /** Runs one GEMM with garbage around the operands and compares with a double-precision reference. */
    private static void check(Path p, boolean tA, boolean tB, int M, int N, int K, float alpha, float beta,
                              int off, int padA, int padB, int padC) {
        Random r = new Random(M * 31L + N * 17L + K);
        int rowsA = tA ? K : M, colsA = tA ? M : K, rowsB = tB ? N : K, colsB = tB ? K : N;
        int lda = colsA + padA, ldb = colsB + padB, ldc = N + padC;
        float[] a = rand(r, off + rowsA * lda + 3), b = rand(r, off + 1 + rowsB * ldb + 3);
        float[] c = rand(r, off + 2 + M * ldc + 3);
        int aOff = off, bOff = off + 1, cOff = off + 2;
        if (beta == 0f) { // beta = 0 must not read C: fill the live area with NaN
            for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) c[cOff + i * ldc + j] = Float.NaN;
        }
        float[] before = c.clone();
        run(p, tA, tB, M, N, K, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double s = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    double x = tA ? a[aOff + k * lda + i] : a[aOff + i * lda + k];
                    double y = tB ? b[bOff + j * ldb + k] : b[bOff + k * ldb + j];
                    s += x * y;
                    mag += Math.abs(x * y);
                }
                int ci = cOff + i * ldc + j;
                double old = beta == 0f ? 0 : before[ci];
                double want = alpha * s + beta * old;
                double tol = 1e-5 * (Math.abs(alpha) * mag + Math.abs(beta * old)) + 1e-6;
                if (Math.abs(c[ci] - want) > tol || Float.isNaN(c[ci])) {
                    fail(String.format("%s tA=%b tB=%b M=%d N=%d K=%d alpha=%s beta=%s at (%d,%d): got %s want %s",
                            p, tA, tB, M, N, K, alpha, beta, i, j, c[ci], want));
                }
            }
        }
        // nothing outside C's M x N window may change (padding, offset, tail)
        for (int idx = 0; idx < c.length; idx++) {
            int rel = idx - cOff;
            boolean inside = rel >= 0 && rel / ldc < M && rel % ldc < N && rel < M * ldc;
            if (!inside) assertEquals(Float.floatToRawIntBits(before[idx]), Float.floatToRawIntBits(c[idx]),
                    p + " wrote outside C at " + idx);
        }
    }

    private static void run(Path p, boolean tA, boolean tB, int M, int N, int K, float alpha, float[] a, int aOff,
                            int lda, float[] b, int bOff, int ldb, float beta, float[] c, int cOff, int ldc) {
        switch (p) {
            case JAVA_PARALLEL -> Gemm.sgemmJava(tA, tB, M, N, K, alpha, a, aOff, lda, b, null, bOff, ldb, beta, c, cOff, ldc, true);
            case JAVA_SERIAL -> Gemm.sgemmSerial(tA, tB, M, N, K, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            case BLAS -> Blas.sgemm(tA, tB, M, N, K, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            case DISPATCH -> Gemm.sgemm(tA, tB, M, N, K, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        }
    }

    private static float[] rand(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = r.nextFloat() * 2 - 1;
        return x;
    }

    private static void assertArrayEquals(float[] want, float[] got) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) assertTrue(want[i] == got[i], "index " + i + ": " + got[i] + " != " + want[i]);
    }
}
