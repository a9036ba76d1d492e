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
 * oneDNN's bf16 GEMM ({@code dnnl_gemm_bf16bf16f32}: bf16 A and B, float32 C and accumulation, row-major) through
 * the FFM API, loaded lazily and optionally (Debian's {@code libdnnl2}). It runs on AMX tiles or AVX512-BF16 dot
 * products, whichever the CPU has: 4-5x OpenBLAS's sgemm on the 111M model's shapes on a 2-core Sapphire Rapids
 * (BENCHMARKS.md). Used only where the CPU has bf16 instructions: elsewhere oneDNN emulates them, and the Java
 * fallback of {@link Bf16Kernels} runs instead. The symbol is exported by libdnnl but not declared in its headers
 * (it is what oneDNN's own matmul tests call); {@code Bf16GemmTest} checks it against a float64 product.
 */
final class OneDnn {
    /** oneDNN's {@code dnnl_cpu_isa_avx512_core_bf16} bits: set when the CPU has bf16 dot products (AMX adds more). */
    private static final int ISA_BF16 = 0xe7;

    private static final MethodHandle GEMM, OMP_THREADS;
    /** oneDNN's name of the instruction set it runs on (e.g. avx512_core_amx), or why the path is off. */
    static final String ISA, ERROR;

    static {
        MethodHandle h = null, omp = null;
        String isa = null, err = null;
        try {
            Linker linker = Linker.nativeLinker();
            SymbolLookup lib = lookup();
            var I = ValueLayout.JAVA_INT;
            var L = ValueLayout.JAVA_LONG;
            var F = ValueLayout.JAVA_FLOAT;
            var C = ValueLayout.JAVA_BYTE;
            var P = ValueLayout.ADDRESS;
            int bits = (int) linker.downcallHandle(lib.findOrThrow("dnnl_get_effective_cpu_isa"), FunctionDescriptor.of(I)).invokeExact();
            MemorySegment name = (MemorySegment) linker.downcallHandle(lib.findOrThrow("dnnl_cpu_isa2str"),
                    FunctionDescriptor.of(P, I)).invokeExact(bits);
            isa = name.reinterpret(64).getString(0).replace("cpu_isa_", "");
            if ((bits & ISA_BF16) != ISA_BF16) err = "this CPU has no bf16 instructions (oneDNN: " + isa + ")";
            else h = linker.downcallHandle(lib.findOrThrow("dnnl_gemm_bf16bf16f32"),
                    FunctionDescriptor.of(I, C, C, L, L, L, F, P, L, P, L, F, P, L), Linker.Option.critical(true));
            // Debian's oneDNN runs on OpenMP (libgomp, loaded with it): its team is sized per calling thread
            omp = linker.downcallHandle(SymbolLookup.libraryLookup("libgomp.so.1", Arena.global()).findOrThrow("omp_set_num_threads"),
                    FunctionDescriptor.ofVoid(I));
        } catch (Throwable t) {
            h = null;
            err = "oneDNN (libdnnl.so.2) not loaded: " + (t.getMessage() != null ? t.getMessage() : t);
        }
        GEMM = h;
        OMP_THREADS = omp;
        ISA = isa;
        ERROR = err;
    }

    private OneDnn() {}

    private static SymbolLookup lookup() {
        for (String c : new String[] {"/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib64/libdnnl.so.2", "/usr/local/lib/libdnnl.so.2"}) {
            Path p = Path.of(c);
            if (Files.exists(p)) return SymbolLookup.libraryLookup(p, Arena.global());
        }
        return SymbolLookup.libraryLookup("libdnnl.so.2", Arena.global());
    }

    /** True when oneDNN loaded and the CPU multiplies bf16 natively. */
    static boolean available() { return GEMM != null; }

    /**
     * C[cOff..] = alpha * op(A) * op(B) + beta * C with A (M x K, or K x M when transA) and B (K x N, or N x K when
     * transB) packed bf16 rows of {@code lda}/{@code ldb} elements from index 0; the caller checked C's bounds.
     */
    static void gemm(boolean transA, boolean transB, int M, int N, int K, float alpha, short[] A, int lda, short[] B, int ldb,
                     float beta, float[] C, int cOff, int ldc) {
        int status;
        try {
            Parallel.releaseCores();
            OMP_THREADS.invokeExact(Parallel.threads()); // as many threads as Wafer's own team (WAFER_THREADS)
            status = (int) GEMM.invokeExact((byte) (transA ? 'T' : 'N'), (byte) (transB ? 'T' : 'N'), (long) M, (long) N, (long) K, alpha,
                    MemorySegment.ofArray(A), (long) lda, MemorySegment.ofArray(B), (long) ldb, beta,
                    MemorySegment.ofArray(C).asSlice((long) cOff * Float.BYTES), (long) ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("dnnl_gemm_bf16bf16f32 failed", t);
        }
        if (status != 0) throw new IllegalStateException("dnnl_gemm_bf16bf16f32 returned status " + status + " for " + M + "x" + N + "x" + K);
    }
}
