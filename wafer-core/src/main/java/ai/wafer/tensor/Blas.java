package ai.wafer.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * OpenBLAS {@code cblas_sgemm} through the FFM API, loaded lazily and optionally.
 *
 * <p>The downcall is linked {@code critical(true)} so heap {@code float[]} segments go straight to
 * native code without copying (the GC is held off for the call's duration, which is fine for a
 * call that only computes). OpenBLAS's own thread pool is sized to {@link Parallel#threads()}.
 */
public final class Blas {
    private static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

    private static final MethodHandle SGEMM;
    private static final MethodHandle SET_THREADS;
    private static final String ERROR;

    static {
        MethodHandle h = null, st = null;
        String err = null;
        try {
            Linker linker = Linker.nativeLinker();
            SymbolLookup lib = lookup();
            ValueLayout.OfInt I = ValueLayout.JAVA_INT;
            ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
            var P = ValueLayout.ADDRESS;
            h = linker.downcallHandle(lib.findOrThrow("cblas_sgemm"),
                    FunctionDescriptor.ofVoid(I, I, I, I, I, I, F, P, I, P, I, F, P, I),
                    Linker.Option.critical(true));
            st = linker.downcallHandle(lib.findOrThrow("openblas_set_num_threads"),
                    FunctionDescriptor.ofVoid(I));
            st.invokeExact(Parallel.threads());
        } catch (Throwable t) {
            h = null;
            st = null;
            err = String.valueOf(t.getMessage() != null ? t.getMessage() : t);
        }
        SGEMM = h;
        SET_THREADS = st;
        ERROR = err;
    }

    private Blas() {}

    private static SymbolLookup lookup() {
        // Debian's libopenblas0-pthread installs via alternatives; try the usual spots, then the loader path.
        String[] candidates = {
            "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
            "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
            "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
            "/usr/lib64/libopenblas.so.0",
            "/usr/local/lib/libopenblas.so.0",
        };
        for (String c : candidates) {
            Path p = Path.of(c);
            if (Files.exists(p)) return SymbolLookup.libraryLookup(p, Arena.global());
        }
        return SymbolLookup.libraryLookup("libopenblas.so.0", Arena.global());
    }

    /** Sets OpenBLAS's own thread count (benchmarks compare one thread against one thread). */
    public static void setThreads(int n) {
        if (SGEMM == null) return;
        try {
            SET_THREADS.invokeExact(Math.max(1, n));
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** True when OpenBLAS was found and linked. */
    public static boolean available() { return SGEMM != null; }

    /** Why loading failed, or null. */
    public static String loadError() { return ERROR; }

    /** Same contract as {@link Gemm#sgemm}; throws IllegalStateException when the library is absent. */
    public static void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha,
                             float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                             float beta, float[] C, int cOff, int ldc) {
        sgemm(transA, transB, M, N, K, alpha, A, aOff, lda, MemorySegment.ofArray(B), bOff, ldb, beta, C, cOff, ldc);
    }

    /** {@link #sgemm} with B a segment of floats (offset and stride in floats): a heap array's or a mapped weight's. */
    public static void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha,
                             float[] A, int aOff, int lda, MemorySegment B, long bOff, int ldb,
                             float beta, float[] C, int cOff, int ldc) {
        if (SGEMM == null) throw new IllegalStateException("OpenBLAS not available: " + ERROR);
        if (M <= 0 || N <= 0) return;
        if (K <= 0 || alpha == 0f) { // nothing to multiply; also spares OpenBLAS an lda of 0
            Gemm.scaleC(M, N, beta, C, cOff, ldc);
            return;
        }
        // Native code has no bounds checks: a bad offset or stride must throw here, not crash the JVM.
        check(A, aOff, transA ? K : M, transA ? M : K, lda, "A");
        int rows = transB ? N : K, cols = transB ? K : N;
        if (bOff < 0 || ldb < cols || (bOff + (long) (rows - 1) * ldb + cols) * Float.BYTES > B.byteSize())
            throw new IndexOutOfBoundsException("B: " + rows + "x" + cols + " ld=" + ldb + " off=" + bOff + " exceeds " + B.byteSize() + " bytes");
        check(C, cOff, M, N, ldc, "C");
        try {
            SGEMM.invokeExact(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, M, N, K, alpha,
                    seg(A, aOff), lda, B.asSlice(bOff * Float.BYTES), ldb, beta, seg(C, cOff), ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }

    static void check(float[] a, int off, int rows, int cols, int ld, String name) {
        if (off < 0 || ld < cols || (long) off + (long) (rows - 1) * ld + cols > a.length) {
            throw new IndexOutOfBoundsException(name + ": " + rows + "x" + cols + " ld=" + ld + " off=" + off
                    + " exceeds length " + a.length);
        }
    }

    private static MemorySegment seg(float[] a, int off) {
        MemorySegment s = MemorySegment.ofArray(a);
        return off == 0 ? s : s.asSlice((long) off * Float.BYTES);
    }
}
