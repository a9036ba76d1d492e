package ai.wafer.io;

import ai.wafer.WaferException;

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
     * The data of an F32 tensor stored as one contiguous run, without copying (read it with an unaligned
     * little-endian float layout), for frozen weights that never need a Java array; null for a tensor stored
     * otherwise (another dtype, a strided view), which must be {@link #read}.
     */
    MemorySegment f32Segment(String name);

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
