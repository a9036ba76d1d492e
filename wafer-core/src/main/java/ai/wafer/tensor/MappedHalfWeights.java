package ai.wafer.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * IEEE half (fp16) values in a segment of little-endian 16-bit words: a frozen weight read in place from a
 * memory-mapped checkpoint stored in that dtype, so an fp16 base costs half of float32's memory and no heap. Widened as
 * it is read; decode widens a strip at a time ({@link F32Weights#decodeByStrips}). (A bf16 file maps as {@link Bf16Weights}.)
 */
public record MappedHalfWeights(MemorySegment segment) implements Weights {
    private static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override public long size() { return segment.byteSize() / 2; }

    @Override public long bytes() { return segment.byteSize(); }

    @Override public boolean mapped() { return true; }

    @Override public MemorySegment mapping() { return segment.isMapped() ? segment : null; }

    @Override public float get(long i) { return Float.float16ToFloat(segment.getAtIndex(LE, i)); }

    @Override public void read(long from, float[] dst, int off, int n) {
        for (int i = 0; i < n; i++) dst[off + i] = get(from + i);
    }

    @Override public void decode(boolean rows, int n, int N, int K, float[] x, float[] out) {
        F32Weights.decodeByStrips(this, rows, n, N, K, x, out);
    }
}
