package ai.wafer.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * bfloat16 ({@code bf16}) or IEEE half (fp16) values in a segment of little-endian 16-bit words: a frozen weight read in
 * place from a memory-mapped checkpoint stored in that dtype, so a bf16 or fp16 base costs half of float32's memory
 * and no heap. Widened as it is read ({@link #read}); decode widens a strip at a time ({@link F32Weights#decodeByStrips}).
 */
public record MappedHalfWeights(MemorySegment segment, boolean bf16) implements Weights {
    private static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));

    @Override public long size() { return segment.byteSize() / 2; }

    @Override public long bytes() { return segment.byteSize(); }

    @Override public boolean mapped() { return true; }

    @Override public MemorySegment mapping() { return segment.isMapped() ? segment : null; }

    @Override public float get(long i) {
        short h = segment.getAtIndex(LE, i);
        return bf16 ? Float.intBitsToFloat(h << 16) : Float.float16ToFloat(h);
    }

    @Override public void read(long from, float[] dst, int off, int n) {
        int i = 0;
        if (bf16) { // a bf16 word is the top half of its float: widen a vector of words and shift them into place
            for (int upper = F.loopBound(n); i < upper; i += F.length())
                ((jdk.incubator.vector.IntVector) ShortVector.fromMemorySegment(S, segment, 2 * (from + i), ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.S2I, F.withLanes(int.class), 0))
                        .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, off + i);
        }
        for (; i < n; i++) dst[off + i] = get(from + i);
    }

    @Override public void decode(boolean rows, int n, int N, int K, float[] x, float[] out) {
        F32Weights.decodeByStrips(this, rows, n, N, K, x, out);
    }
}
