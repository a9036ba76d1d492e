package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Float32 values in a segment of little-endian floats with no alignment promise: a frozen weight read in place
 * from a memory-mapped checkpoint file (nothing copied onto the heap; processes mapping the same file share it).
 */
public record MappedF32Weights(MemorySegment segment) implements Weights {
    public static final ValueLayout.OfFloat LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final ByteOrder O = ByteOrder.LITTLE_ENDIAN;

    @Override public long size() { return segment.byteSize() / Float.BYTES; }

    @Override public long bytes() { return segment.byteSize(); }

    @Override public boolean mapped() { return true; }

    @Override public MemorySegment mapping() { return segment.isMapped() ? segment : null; }

    @Override public float get(long i) { return segment.getAtIndex(LE, i); }

    @Override public void read(long from, float[] dst, int off, int n) {
        MemorySegment.copy(segment, LE, from * Float.BYTES, dst, off, n);
    }

    /** As {@link F32Weights}' kernels, loading from the segment: [in, out] in bands of KB rows, rows as dot products. */
    @Override public void decode(boolean rows, int n, int N, int K, float[] x, float[] out) {
        if (rows) {
            Parallel.forRange(N, (t, from, to) -> {
                for (int r = from; r < to; r++)
                    for (int i = 0; i < n; i++) out[i * N + r] = dotRow(r, K, x, i * K);
            });
            return;
        }
        int bw = F32Weights.BW, KB = F32Weights.KB, blocks = (N + bw - 1) / bw;
        Parallel.forRange(blocks, (t, from, to) -> {
            for (int k0 = 0; k0 < K; k0 += KB) {
                int k1 = Math.min(K, k0 + KB);
                for (int b = from; b < to; b++) {
                    int j0 = b * bw;
                    if (j0 + bw > N) { if (k1 == K) F32Weights.decodeScalar(this, false, j0, N, n, N, K, x, out); continue; }
                    for (int i = 0; i < n; i++) {
                        int o = i * N + j0;
                        FloatVector a0 = F32Weights.start(k0, out, o), a1 = F32Weights.start(k0, out, o + L);
                        FloatVector a2 = F32Weights.start(k0, out, o + 2 * L);
                        FloatVector a3 = F32Weights.start(k0, out, o + 3 * L);
                        for (int k = k0; k < k1; k++) {
                            long wk = ((long) k * N + j0) * Float.BYTES;
                            FloatVector u = FloatVector.broadcast(F, x[i * K + k]);
                            a0 = FloatVector.fromMemorySegment(F, segment, wk, O).fma(u, a0);
                            a1 = FloatVector.fromMemorySegment(F, segment, wk + 4L * L, O).fma(u, a1);
                            a2 = FloatVector.fromMemorySegment(F, segment, wk + 8L * L, O).fma(u, a2);
                            a3 = FloatVector.fromMemorySegment(F, segment, wk + 12L * L, O).fma(u, a3);
                        }
                        F32Weights.store4(a0, a1, a2, a3, out, o);
                    }
                }
            }
        });
    }

    private float dotRow(int r, int K, float[] x, int xo) {
        long base = (long) r * K * Float.BYTES;
        // four independent chains: one FMA chain would wait on its own latency, not on memory
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int c = 0, upper = (K / (4 * L)) * (4 * L);
        for (; c < upper; c += 4 * L) {
            a0 = FloatVector.fromMemorySegment(F, segment, base + 4L * c, O).fma(FloatVector.fromArray(F, x, xo + c), a0);
            a1 = FloatVector.fromMemorySegment(F, segment, base + 4L * (c + L), O).fma(FloatVector.fromArray(F, x, xo + c + L), a1);
            a2 = FloatVector.fromMemorySegment(F, segment, base + 4L * (c + 2 * L), O).fma(FloatVector.fromArray(F, x, xo + c + 2 * L), a2);
            a3 = FloatVector.fromMemorySegment(F, segment, base + 4L * (c + 3 * L), O).fma(FloatVector.fromArray(F, x, xo + c + 3 * L), a3);
        }
        for (; c + L <= K; c += L) a0 = FloatVector.fromMemorySegment(F, segment, base + 4L * c, O).fma(FloatVector.fromArray(F, x, xo + c), a0);
        float s = VecMath.sum(a0.add(a1).add(a2.add(a3)));
        for (; c < K; c++) s += get((long) r * K + c) * x[xo + c];
        return s;
    }
}
