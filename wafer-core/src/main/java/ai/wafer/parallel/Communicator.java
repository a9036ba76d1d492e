package ai.wafer.parallel;

/**
 * The collectives that distributed training needs, over a group of {@link #size()} ranks.
 *
 * <p>Every rank of the group must call the same collectives in the same order with the same counts
 * (MPI's rule). Buffers are plain heap arrays addressed by offset and count, so callers exchange
 * slices of their own flat buffers without copies of their own. Reductions add in rank order, so every
 * rank receives bit-identical results (replicas stay identical without a broadcast).
 *
 * <p>A failure anywhere (a rank that died, a peer that stopped answering) surfaces as a
 * {@link ai.wafer.WaferException} that names the rank and the operation, never as a hang.
 */
public interface Communicator extends AutoCloseable {
    /** This rank, 0..size-1. */
    int rank();

    int size();

    /** buf[off, off+len) becomes the element-wise sum over all ranks. */
    void allReduceSum(float[] buf, int off, int len);

    /** As {@link #allReduceSum(float[], int, int)}, for small double statistics (loss sums, squared norms). */
    void allReduceSum(double[] buf, int off, int len);

    /**
     * buf[off, off + size*count) holds this rank's contribution, in size chunks of count. Afterwards
     * chunk {@code rank} (at off + rank*count) holds the sum over ranks of that chunk; the other chunks
     * are left as they were.
     */
    void reduceScatterSum(float[] buf, int off, int count);

    /** buf[off + rank*count, +count) is this rank's part; afterwards every chunk holds its owner's part. */
    void allGather(float[] buf, int off, int count);

    /**
     * Sends buf[off, off+len) to {@code dest}. It may return before the peer receives (the data are
     * copied or in flight), so two ranks may send to each other and then receive without deadlock.
     */
    void send(float[] buf, int off, int len, int dest, int tag);

    /** Receives exactly len floats from {@code src} with {@code tag} into buf[off, off+len). */
    void recv(float[] buf, int off, int len, int src, int tag);

    void barrier();

    /**
     * A sub-group: the ranks that pass the same color, ordered by key (then by rank). Every rank of this
     * group must call it. Used to lay a job out as data-, tensor- and pipeline-parallel groups.
     */
    Communicator split(int color, int key);

    /** Bytes this rank has sent so far, counted as the ring algorithms send them (see {@link Traffic}). */
    long bytesSent();

    /** Frees what the group holds (a sub-group's handle; the world's engine on the world). */
    @Override void close();
}
