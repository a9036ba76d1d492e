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

    @Override public float get(long i) { return segment.getAtIndex(LE, i); }

    @Override public void read(long from, float[] dst, int off, int n) {
        MemorySegment.copy(segment, LE, from * Float.BYTES, dst, off, n);
    }

    @Override public void decode(boolean rows, int n, int N, int K, float[] x, float[] bias, float[] out) {
        int bw = F32Weights.BW, blocks = rows ? N : (N + bw - 1) / bw;
        Parallel.forRange(blocks, (t, from, to) -> {
            for (int b = from; b < to; b++) {
                if (rows) { for (int i = 0; i < n; i++) out[i * N + b] = dotRow(b, K, x, i * K) + (bias == null ? 0f : bias[b]); continue; }
                int j0 = b * bw;
                for (int i = 0; i < n; i++) {
                    if (j0 + bw > N) {
                        for (int j = j0; j < N; j++) {
                            float s = 0f;
                            for (int k = 0; k < K; k++) s += x[i * K + k] * get((long) k * N + j);
                            out[i * N + j] = s + (bias == null ? 0f : bias[j]);
                        }
                        continue;
                    }
                    FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                    for (int k = 0; k < K; k++) {
                        long wk = ((long) k * N + j0) * Float.BYTES;
                        FloatVector u = FloatVector.broadcast(F, x[i * K + k]);
                        a0 = FloatVector.fromMemorySegment(F, segment, wk, O).fma(u, a0);
                        a1 = FloatVector.fromMemorySegment(F, segment, wk + 4L * L, O).fma(u, a1);
                        a2 = FloatVector.fromMemorySegment(F, segment, wk + 8L * L, O).fma(u, a2);
                        a3 = FloatVector.fromMemorySegment(F, segment, wk + 12L * L, O).fma(u, a3);
                    }
                    if (bias != null) {
                        a0 = a0.add(FloatVector.fromArray(F, bias, j0)); a1 = a1.add(FloatVector.fromArray(F, bias, j0 + L));
                        a2 = a2.add(FloatVector.fromArray(F, bias, j0 + 2 * L)); a3 = a3.add(FloatVector.fromArray(F, bias, j0 + 3 * L));
                    }
                    F32Weights.store4(a0, a1, a2, a3, out, i * N + j0);
                }
            }
        });
    }

    private float dotRow(int r, int K, float[] x, int xo) {
        long base = (long) r * K * Float.BYTES;
        FloatVector acc = FloatVector.zero(F);
        int c = 0, upper = F.loopBound(K);
        for (; c < upper; c += L)
            acc = FloatVector.fromMemorySegment(F, segment, base + 4L * c, O).fma(FloatVector.fromArray(F, x, xo + c), acc);
        float s = VecMath.sum(acc);
        for (; c < K; c++) s += get((long) r * K + c) * x[xo + c];
        return s;
    }
}
