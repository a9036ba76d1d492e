package ai.wafer.io;

import ai.wafer.WaferException;

import ai.wafer.tensor.MappedF32Weights;
import ai.wafer.tensor.Bf16Weights;
import ai.wafer.tensor.MappedHalfWeights;
import ai.wafer.tensor.Weights;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * An open checkpoint file (or set of shards), whatever its format: {@link SafeTensors.Reader} or
 * {@link TorchCheckpoint}. What {@link Checkpoint} needs to fill a model from it.
 */
public interface TensorReader extends AutoCloseable {
    /** Tensor names, sorted. */
    List<String> names();

    SafeTensors.TensorInfo info(String name);

    /** Reads the tensor into {@code dst[off ..]} as floats (F16/BF16 widened exactly, F64 rounded). */
    void read(String name, float[] dst, int off);

    /**
     * The stored bytes of a tensor kept as one contiguous run, without copying, for frozen weights that never need
     * a Java array; null for a strided view, which must be {@link #read}.
     */
    MemorySegment contiguous(String name);

    /** {@link #contiguous} for an F32 tensor (read it with an unaligned little-endian float layout), else null. */
    default MemorySegment f32Segment(String name) { return info(name).dtype() == SafeTensors.DType.F32 ? contiguous(name) : null; }

    /** The tensor used in place as a weight storage (contiguous F32, F16 or BF16), or null: it must be {@link #read}. */
    default Weights mapped(String name) {
        MemorySegment s = contiguous(name);
        if (s == null) return null;
        return switch (info(name).dtype()) {
            case F32 -> new MappedF32Weights(s.asReadOnly());
            case BF16 -> Bf16Weights.of(s.asReadOnly());
            case F16 -> new MappedHalfWeights(s.asReadOnly());
            default -> null;
        };
    }

    /** The tensor as a new float array. */
    default float[] floats(String name) {
        long n = info(name).numel();
        if (n > Integer.MAX_VALUE - 8) throw new WaferException("tensor " + name + " has " + n + " values, too many for one Java array");
        float[] out = new float[(int) n];
        read(name, out, 0);
        return out;
    }

    @Override void close();
}
