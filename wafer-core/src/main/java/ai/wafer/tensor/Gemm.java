package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;


/**
 * Row-major single-precision GEMM on heap arrays: {@code C = alpha * op(A) * op(B) + beta * C}.
 *
 * <p>{@code op(A)} is M x K: stored M x K with row stride {@code lda}, or K x M when {@code transA}.
 * {@code op(B)} is K x N: stored K x N with row stride {@code ldb}, or N x K when {@code transB}.
 * {@code beta == 0} never reads C (old NaNs vanish), as in BLAS.
 *
 * <p>This class holds the Java implementation (Vector API, GotoBLAS-style packing plus an 8 x 2-vector
 * register-blocked micro-kernel, packing B from a heap array, a float32 segment or bf16 pairs) and the choice
 * between it and OpenBLAS through FFM ({@link Blas}): the two {@link Kernels} implementations. {@link #sgemm} goes
 * through {@link Kernels#current} (see {@link #setImpl}); {@link #sgemmSerial} always runs the Java kernel on the calling thread,
 * because it is meant for callers already inside a {@link Parallel} loop and OpenBLAS would either
 * oversubscribe the cores or serialize concurrent calls on its internal lock.
 */
public final class Gemm {
    public enum Impl { JAVA, BLAS }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int VL = S.length();
    /** A panels are MR = 8 floats wide per k: one 256-bit vector. */
    private static final VectorSpecies<Float> SA = FloatVector.SPECIES_256;
    /** Micro-tile: MR rows of C by NR = 2 vectors of columns (16 accumulators). */
    static final int MR = 8, NR = 2 * VL;
    /**
     * K block: a KC x NR B micro-panel (32 KiB at AVX-512) stays in L1 while A streams from L2.
     * Longer K blocks also mean fewer read-modify-write passes over C; 256 measured best (128..768 tried).
     */
    private static final int KC = 256;
    /** M block: the packed MC x KC A block (768 KiB) lives in the 2 MiB L2; measured best of 18..128 x MR. */
    private static final int MC = MR * 96;
    /**
     * N block: the packed KC x NC B block (4 MiB) sits in L3. It is wide so that A, the costlier
     * operand to pack (a gather per k), is packed once per K block for every layer shape but the LM head.
     */
    private static final int NC = NR * 128;
    /** Below this many multiply-adds, waking the thread team costs more than it saves. */
    private static final long PARALLEL_MIN_MNK = 1L << 21;

    private static volatile Impl impl;

    private Gemm() {}

    /** Forces an implementation ({@code BLAS} silently degrades to {@code JAVA} without the library); null = auto. */
    public static void setImpl(Impl which) { impl = which; }

    /** The implementation {@link #sgemm} uses now (resolving the default on first use). */
    public static Impl impl() {
        Impl i = impl;
        if (i == null) impl = i = chooseDefault();
        return (i == Impl.BLAS && !Blas.available()) ? Impl.JAVA : i;
    }

    /** Multithreaded GEMM with the selected implementation ({@link Kernels#current}). */
    public static void sgemm(boolean transA, boolean transB, int M, int N, int K, float alpha,
                             float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                             float beta, float[] C, int cOff, int ldc) {
        Kernels.current().sgemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    }

    /** Single-threaded Java GEMM for callers already running inside a parallel loop. */
    public static void sgemmSerial(boolean transA, boolean transB, int M, int N, int K, float alpha,
                                   float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                                   float beta, float[] C, int cOff, int ldc) {
        sgemmJava(transA, transB, M, N, K, alpha, A, aOff, lda, B, null, bOff, ldb, beta, C, cOff, ldc, false);
    }

    /**
     * The Java implementation, multithreaded over the {@link Parallel} team when {@code parallel}. B is {@code B} (a
     * heap array), or when that is null the storage {@code Bw} (mapped, bf16: widened while packing).
     */
    static void sgemmJava(boolean transA, boolean transB, int M, int N, int K, float alpha,
                          float[] A, int aOff, int lda, float[] B, Weights Bw, long bOff, int ldb,
                          float beta, float[] C, int cOff, int ldc, boolean parallel) {
        if (M <= 0 || N <= 0) return;
        if (K <= 0 || alpha == 0f) {
            scaleC(M, N, beta, C, cOff, ldc);
            return;
        }
        int T = Parallel.threads();
        if (!parallel || T == 1 || (long) M * N * K < PARALLEL_MIN_MNK) {
            Scratch s = SCRATCH.get();
            block(s, transA, transB, 0, M, 0, N, K, alpha, A, aOff, lda, B, Bw, bOff, ldb, beta, C, cOff, ldc);
            return;
        }
        // Split C into a tm x tn grid, one rectangle per thread, in whole micro-tiles. Pick the grid
        // whose largest rectangle (padded to tiles) is smallest; ties go to splitting N, which keeps
        // each thread's A panels long.
        int mt = (M + MR - 1) / MR, nt = (N + NR - 1) / NR;
        int bestTm = 1;
        long best = Long.MAX_VALUE;
        for (int tm = 1; tm <= T; tm++) {
            if (T % tm != 0) continue;
            int tn = T / tm;
            long cost = (long) ((mt + tm - 1) / tm) * ((nt + tn - 1) / tn);
            if (cost < best) { best = cost; bestTm = tm; }
        }
        final int tm = bestTm, tn = T / bestTm;
        Parallel.forRange(T, (w, from, to) -> {
            Scratch s = SCRATCH.get();
            for (int t = from; t < to; t++) {
                int bi = t / tn, bj = t % tn;
                int i0 = (int) ((long) mt * bi / tm) * MR, i1 = Math.min(M, (int) ((long) mt * (bi + 1) / tm) * MR);
                int j0 = (int) ((long) nt * bj / tn) * NR, j1 = Math.min(N, (int) ((long) nt * (bj + 1) / tn) * NR);
                if (i0 < i1 && j0 < j1) {
                    block(s, transA, transB, i0, i1, j0, j1, K, alpha, A, aOff, lda, B, Bw, bOff, ldb, beta, C, cOff, ldc);
                }
            }
        });
    }

    /** Per-thread packing buffers, grown on demand and then reused forever. */
    private static final class Scratch {
        float[] a = new float[0], b = new float[0];
        final float[] tile = new float[MR * NR];
        final int[] rowIdx = new int[MR], colIdx = new int[VL]; // gather maps: multiples of lda / ldb
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** C[i0:i1, j0:j1] on the calling thread: the GotoBLAS loop nest jc / pc / ic / jr / ir. */
    private static void block(Scratch s, boolean transA, boolean transB, int i0, int i1, int j0, int j1, int K,
                              float alpha, float[] A, int aOff, int lda, float[] B, Weights Bw, long bOff, int ldb,
                              float beta, float[] C, int cOff, int ldc) {
        int kcMax = Math.min(KC, K);
        int mcMax = roundUp(Math.min(MC, i1 - i0), MR), ncMax = roundUp(Math.min(NC, j1 - j0), NR);
        if (s.a.length < mcMax * kcMax) s.a = new float[mcMax * kcMax];
        if (s.b.length < ncMax * kcMax) s.b = new float[ncMax * kcMax];
        float[] ap = s.a, bp = s.b, tile = s.tile;
        for (int r = 0; r < MR; r++) s.rowIdx[r] = r * lda;
        for (int j = 0; j < VL; j++) s.colIdx[j] = j * ldb;
        for (int jc = j0; jc < j1; jc += NC) {
            int nc = Math.min(NC, j1 - jc);
            for (int pc = 0; pc < K; pc += KC) {
                int kc = Math.min(KC, K - pc);
                float bt = pc == 0 ? beta : 1f; // beta applies once; later K blocks accumulate
                if (B != null) packB(transB, B, (int) bOff, ldb, pc, kc, jc, nc, bp, s.colIdx);
                else packB(transB, Bw, bOff, ldb, pc, kc, jc, nc, bp);
                for (int ic = i0; ic < i1; ic += MC) {
                    int mc = Math.min(MC, i1 - ic);
                    packA(transA, A, aOff, lda, ic, mc, pc, kc, alpha, ap, s.rowIdx);
                    // jr outer: one KC x NR B micro-panel stays in L1 while every A micro-panel of the
                    // L2-resident A block streams past it (measured faster than ir outer here).
                    for (int jr = 0; jr < nc; jr += NR) {
                        for (int ir = 0; ir < mc; ir += MR) {
                            tile(kc, ap, ir, mc, bp, jr, nc, C, cOff + (ic + ir) * ldc + jc + jr, ldc, bt, s.tile);
                        }
                    }
                }
            }
        }
    }

    /** One MR x NR tile of C at c0; ragged edge tiles go through a scratch tile. */
    private static void tile(int kc, float[] ap, int ir, int mc, float[] bp, int jr, int nc, float[] C, int c0, int ldc,
                             float bt, float[] tile) {
        int mr = Math.min(MR, mc - ir), nr = Math.min(NR, nc - jr);
        if (mr == MR && nr == NR) {
            kernel(kc, ap, ir * kc, bp, jr * kc, C, c0, ldc, bt);
        } else {
            kernel(kc, ap, ir * kc, bp, jr * kc, tile, 0, NR, 0f);
            for (int r = 0; r < mr; r++) {
                int co = c0 + r * ldc, to = r * NR;
                for (int j = 0; j < nr; j++) {
                    C[co + j] = bt == 0f ? tile[to + j] : tile[to + j] + bt * C[co + j];
                }
            }
        }
    }

    private static int roundUp(int x, int m) { return (x + m - 1) / m * m; }

    /**
     * Packs alpha * op(A)[i0:i0+mc, p0:p0+kc] as MR-row panels, each stored k-major
     * ({@code dst[panel*MR*kc + k*MR + r]}), zero-padding the last panel's missing rows.
     * Folding alpha in here keeps the micro-kernel's epilogue to a single fma. A full panel's
     * k-column is one 8-lane vector: a plain load when A is transposed, a gather across the MR rows
     * (index map {@code rowIdx} = r * lda) otherwise.
     */
    private static void packA(boolean transA, float[] A, int aOff, int lda, int i0, int mc, int p0, int kc,
                              float alpha, float[] dst, int[] rowIdx) {
        FloatVector va = FloatVector.broadcast(SA, alpha);
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = Math.min(MR, mc - ir), base = ir * kc;
            if (mr == MR) {
                if (!transA) {
                    int src = aOff + (i0 + ir) * lda + p0;
                    for (int k = 0; k < kc; k++) {
                        FloatVector.fromArray(SA, A, src + k, rowIdx, 0).mul(va).intoArray(dst, base + k * MR);
                    }
                } else {
                    int src = aOff + p0 * lda + i0 + ir;
                    for (int k = 0; k < kc; k++) {
                        FloatVector.fromArray(SA, A, src + k * lda).mul(va).intoArray(dst, base + k * MR);
                    }
                }
            } else {
                for (int k = 0; k < kc; k++) {
                    int d = base + k * MR;
                    for (int r = 0; r < MR; r++) {
                        dst[d + r] = r >= mr ? 0f
                                : alpha * (transA ? A[aOff + (p0 + k) * lda + i0 + ir + r] : A[aOff + (i0 + ir + r) * lda + p0 + k]);
                    }
                }
            }
        }
    }

    /**
     * Packs op(B)[p0:p0+kc, j0:j0+nc] as NR-column panels stored k-major
     * ({@code dst[panel*NR*kc + k*NR + j]}), zero-padding the last panel's missing columns.
     * Transposed B is gathered one k at a time across VL stored rows (index map {@code colIdx} = j * ldb).
     */
    private static void packB(boolean transB, float[] B, int bOff, int ldb, int p0, int kc, int j0, int nc,
                              float[] dst, int[] colIdx) {
        for (int jr = 0; jr < nc; jr += NR) {
            int nr = Math.min(NR, nc - jr), base = jr * kc;
            if (nr == NR) {
                if (!transB) {
                    int src = bOff + p0 * ldb + j0 + jr;
                    for (int k = 0; k < kc; k++) {
                        int sk = src + k * ldb, d = base + k * NR;
                        FloatVector.fromArray(S, B, sk).intoArray(dst, d);
                        FloatVector.fromArray(S, B, sk + VL).intoArray(dst, d + VL);
                    }
                } else {
                    int src0 = bOff + (j0 + jr) * ldb + p0, src1 = src0 + VL * ldb;
                    for (int k = 0; k < kc; k++) {
                        int d = base + k * NR;
                        FloatVector.fromArray(S, B, src0 + k, colIdx, 0).intoArray(dst, d);
                        FloatVector.fromArray(S, B, src1 + k, colIdx, 0).intoArray(dst, d + VL);
                    }
                }
            } else {
                for (int k = 0; k < kc; k++) {
                    int d = base + k * NR;
                    for (int j = 0; j < NR; j++) {
                        dst[d + j] = j >= nr ? 0f
                                : transB ? B[bOff + (j0 + jr + j) * ldb + p0 + k] : B[bOff + (p0 + k) * ldb + j0 + jr + j];
                    }
                }
            }
        }
    }

    /**
     * {@link #packB} from any other storage (a mapped float32 weight, bf16): a row of a plain panel is one
     * {@link Weights#read} (widening as it copies), anything else one value at a time. Packing is O(K N) against the
     * kernel's O(M K N), and the packed panel is float32, so no widened copy of the weight ever exists.
     */
    private static void packB(boolean transB, Weights B, long bOff, int ldb, int p0, int kc, int j0, int nc, float[] dst) {
        for (int jr = 0; jr < nc; jr += NR) {
            int nr = Math.min(NR, nc - jr), base = jr * kc;
            for (int k = 0; k < kc; k++) {
                int d = base + k * NR;
                if (!transB && nr == NR) {
                    B.read(bOff + (long) (p0 + k) * ldb + j0 + jr, dst, d, NR);
                    continue;
                }
                for (int j = 0; j < NR; j++) {
                    long at = transB ? bOff + (long) (j0 + jr + j) * ldb + p0 + k : bOff + (long) (p0 + k) * ldb + j0 + jr + j;
                    dst[d + j] = j >= nr ? 0f : B.get(at);
                }
            }
        }
    }

    /**
     * The micro-kernel: a full MR x NR tile, {@code C = acc + beta * C} (beta == 0 never reads C).
     * Sixteen accumulators in named locals so C2 keeps them in registers; each k step loads two B
     * vectors and broadcasts eight A scalars for sixteen FMAs. (8 x 2 measured best among 4..14 rows
     * x 1..4 vectors on AVX-512; at AVX2's 16 registers it would spill, a 6 x 2 tile suits that.)
     */
    private static void kernel(int kc, float[] a, int ai, float[] b, int bi, float[] c, int ci, int ldc, float beta) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        for (int k = 0; k < kc; k++) {
            int bk = bi + k * NR, ak = ai + k * MR;
            FloatVector b0 = FloatVector.fromArray(S, b, bk);
            FloatVector b1 = FloatVector.fromArray(S, b, bk + VL);
            FloatVector x0 = FloatVector.broadcast(S, a[ak]);
            c00 = x0.fma(b0, c00); c01 = x0.fma(b1, c01);
            FloatVector x1 = FloatVector.broadcast(S, a[ak + 1]);
            c10 = x1.fma(b0, c10); c11 = x1.fma(b1, c11);
            FloatVector x2 = FloatVector.broadcast(S, a[ak + 2]);
            c20 = x2.fma(b0, c20); c21 = x2.fma(b1, c21);
            FloatVector x3 = FloatVector.broadcast(S, a[ak + 3]);
            c30 = x3.fma(b0, c30); c31 = x3.fma(b1, c31);
            FloatVector x4 = FloatVector.broadcast(S, a[ak + 4]);
            c40 = x4.fma(b0, c40); c41 = x4.fma(b1, c41);
            FloatVector x5 = FloatVector.broadcast(S, a[ak + 5]);
            c50 = x5.fma(b0, c50); c51 = x5.fma(b1, c51);
            FloatVector x6 = FloatVector.broadcast(S, a[ak + 6]);
            c60 = x6.fma(b0, c60); c61 = x6.fma(b1, c61);
            FloatVector x7 = FloatVector.broadcast(S, a[ak + 7]);
            c70 = x7.fma(b0, c70); c71 = x7.fma(b1, c71);
        }
        if (beta == 0f) {
            c00.intoArray(c, ci); c01.intoArray(c, ci + VL); ci += ldc;
            c10.intoArray(c, ci); c11.intoArray(c, ci + VL); ci += ldc;
            c20.intoArray(c, ci); c21.intoArray(c, ci + VL); ci += ldc;
            c30.intoArray(c, ci); c31.intoArray(c, ci + VL); ci += ldc;
            c40.intoArray(c, ci); c41.intoArray(c, ci + VL); ci += ldc;
            c50.intoArray(c, ci); c51.intoArray(c, ci + VL); ci += ldc;
            c60.intoArray(c, ci); c61.intoArray(c, ci + VL); ci += ldc;
            c70.intoArray(c, ci); c71.intoArray(c, ci + VL);
        } else {
            FloatVector bv = FloatVector.broadcast(S, beta);
            FloatVector.fromArray(S, c, ci).fma(bv, c00).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c01).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c10).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c11).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c20).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c21).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c30).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c31).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c40).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c41).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c50).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c51).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c60).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c61).intoArray(c, ci + VL); ci += ldc;
            FloatVector.fromArray(S, c, ci).fma(bv, c70).intoArray(c, ci);
            FloatVector.fromArray(S, c, ci + VL).fma(bv, c71).intoArray(c, ci + VL);
        }
    }

    /** C = beta * C over M x N (beta == 0 writes zeros without reading). */
    static void scaleC(int M, int N, float beta, float[] C, int cOff, int ldc) {
        if (beta == 1f) return;
        for (int i = 0; i < M; i++) {
            int o = cOff + i * ldc;
            for (int j = 0; j < N; j++) C[o + j] = beta == 0f ? 0f : beta * C[o + j];
        }
    }

    private static Impl chooseDefault() {
        String env = System.getenv("WAFER_GEMM");
        if (env != null) {
            switch (env.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "java": return Impl.JAVA;
                case "blas":
                    if (!Blas.available()) {
                        System.err.println("wafer: WAFER_GEMM=blas but OpenBLAS could not be loaded ("
                                + Blas.loadError() + "); using the Java GEMM");
                    }
                    return Impl.BLAS;
                default: break;
            }
        }
        // Default: OpenBLAS when present. It measured 1.2-1.5x faster than the Java kernel on every
        // layer shape here (see GemmBench, in src/test); a start-up timing would be meaningless anyway
        // because the Java kernel is still interpreted on the first calls.
        return Blas.available() ? Impl.BLAS : Impl.JAVA;
    }
}
