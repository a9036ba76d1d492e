package ai.wafer.parallel;

import ai.wafer.WaferException;
import ai.wafer.tensor.Parallel;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.stream.IntStream;

/**
 * Ranks as threads of one JVM: the embedded engine, needing nothing installed. Tests run 2- and
 * 4-rank jobs with it, and it trains on one machine without MPI.
 *
 * <p>A collective is a rendezvous: each rank posts its buffer in its slot and waits at the group's
 * barrier; then every rank reads the others' buffers directly. An all-reduce is a reduce-scatter
 * (rank r adds chunk r of every buffer, in rank order, and writes it into its own) followed by an
 * all-gather (each rank copies chunk s from rank s): no shared scratch, each element added once, and
 * every rank ends with the same bits. Each rank's kernels run serially on its own thread
 * ({@link Parallel#runSerially}) so ranks do not queue for the one shared worker team.
 *
 * <p>Failure: a rank that throws fails the whole job at once (every barrier is broken and every
 * waiting rank throws "rank N failed: ..."); a rank that stops answering is caught by the timeout,
 * which names the ranks that did not arrive.
 */
public final class ThreadCommunicator implements Communicator {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

    private final Job job;
    private final Group group;
    private final int rank;      // in the group
    private final int global;    // in the job
    private long bytes;
    private float[] scratch = new float[0];
    private double[] scratchD = new double[0];

    private ThreadCommunicator(Job job, Group group, int rank) {
        this.job = job;
        this.group = group;
        this.rank = rank;
        this.global = group.members[rank];
    }

    /**
     * Runs {@code body} on {@code n} ranks, one thread each, and returns their results in rank order.
     * If a rank fails, the others are stopped and the first failure is thrown (an Error as it is,
     * anything else as a WaferException naming the rank).
     */
    public static <T> List<T> run(int n, Duration timeout, Function<Communicator, T> body) {
        if (n < 1) throw new WaferException("a job needs at least one rank, got " + n);
        Job job = new Job(n, timeout);
        Group world = new Group(job, IntStream.range(0, n).toArray());
        List<T> results = new ArrayList<>(java.util.Collections.nCopies(n, null));
        Thread[] threads = new Thread[n];
        for (int r = 0; r < n; r++) {
            int rank = r;
            threads[r] = new Thread(() -> Parallel.runSerially(() -> {
                try {
                    results.set(rank, body.apply(new ThreadCommunicator(job, world, rank)));
                } catch (Throwable t) {
                    job.fail(rank, t);
                }
            }), "wafer-rank-" + r);
            threads[r].setDaemon(true);
        }
        for (Thread t : threads) t.start();
        try {
            for (Thread t : threads) t.join();
        } catch (InterruptedException e) {
            job.fail(-1, e);
            Thread.currentThread().interrupt();
            throw new WaferException("interrupted while waiting for " + n + " ranks");
        }
        Throwable f = job.failure;
        if (f != null) {
            if (f instanceof Error e) throw e;
            if (f instanceof WaferException w && w.getMessage().startsWith("rank ")) throw w;
            throw new WaferException("rank " + job.failedRank + " failed: " + f, f);
        }
        return results;
    }

    @Override public int rank() { return rank; }
    @Override public int size() { return group.members.length; }
    @Override public long bytesSent() { return bytes; }

    @Override public void allReduceSum(float[] buf, int off, int len) {
        enter("allReduce", buf, off, len);
        int lo = (int) ((long) len * rank / size()), hi = (int) ((long) len * (rank + 1) / size());
        reduceChunk(buf, off, lo, hi - lo);
        gatherChunks("allReduce", buf, off, len);
        bytes += Traffic.allReduce(4L * len, size());
    }

    @Override public void allReduceSum(double[] buf, int off, int len) {
        int p = size();
        enter("allReduce(double)", buf, off, len);
        int lo = (int) ((long) len * rank / p), n = (int) ((long) len * (rank + 1) / p) - lo;
        if (scratchD.length < n) scratchD = new double[n];
        double[] acc = scratchD;
        System.arraycopy((double[]) group.buf[0], group.off[0] + lo, acc, 0, n);
        for (int s = 1; s < p; s++) {
            double[] b = (double[]) group.buf[s];
            int o = group.off[s] + lo;
            for (int i = 0; i < n; i++) acc[i] += b[o + i];
        }
        System.arraycopy(acc, 0, buf, off + lo, n);
        gatherChunks("allReduce(double)", buf, off, len);
        bytes += Traffic.allReduce(8L * len, p);
    }

    /** The all-reduce's second half: once every rank has summed its chunk, copies the other ranks' chunks. */
    private void gatherChunks(String op, Object buf, int off, int len) {
        int p = size();
        await(op);
        for (int s = 0; s < p; s++) {
            if (s == rank) continue;
            int slo = (int) ((long) len * s / p), shi = (int) ((long) len * (s + 1) / p);
            System.arraycopy(group.buf[s], group.off[s] + slo, buf, off + slo, shi - slo);
        }
        await(op);
    }

    /** buf[off+lo, +n) = sum over ranks s (in order) of rank s's buffer at the same place. */
    private void reduceChunk(float[] buf, int off, int lo, int n) {
        if (scratch.length < n) scratch = new float[n];
        float[] acc = scratch;
        System.arraycopy((float[]) group.buf[0], group.off[0] + lo, acc, 0, n);
        for (int s = 1; s < size(); s++) {
            float[] b = (float[]) group.buf[s];
            int o = group.off[s] + lo;
            for (int i = 0; i < n; i++) acc[i] += b[o + i];
        }
        System.arraycopy(acc, 0, buf, off + lo, n);
    }

    @Override public void reduceScatterSum(float[] buf, int off, int count) {
        int p = size();
        enter("reduceScatter", buf, off, count);
        reduceChunk(buf, off, rank * count, count);
        await("reduceScatter"); // nobody reads my other chunks after this
        bytes += Traffic.reduceScatter(4L * count * p, p);
    }

    @Override public void allGather(float[] buf, int off, int count) {
        int p = size();
        enter("allGather", buf, off, count);
        for (int s = 0; s < p; s++)
            if (s != rank) System.arraycopy((float[]) group.buf[s], group.off[s] + s * count, buf, off + s * count, count);
        await("allGather");
        bytes += Traffic.allGather(4L * count * p, p);
    }

    @Override public void barrier() { enter("barrier", null, 0, 0); }

    @Override public Communicator split(int color, int key) {
        enter("split", new int[]{color, key}, 0, 0);
        int p = size();
        List<Integer> mine = new ArrayList<>();
        for (int s = 0; s < p; s++) if (((int[]) group.buf[s])[0] == color) mine.add(s);
        mine.sort(Comparator.<Integer>comparingInt(s -> ((int[]) group.buf[s])[1]).thenComparingInt(s -> s));
        int leader = mine.get(0), me = mine.indexOf(rank);
        if (rank == leader) {
            int[] members = new int[mine.size()];
            for (int i = 0; i < members.length; i++) members[i] = group.members[mine.get(i)];
            group.made[rank] = new Group(job, members);
        }
        await("split");
        Group g = group.made[leader];
        await("split"); // the leader's slot may be reused only after everyone has read it
        return new ThreadCommunicator(job, g, me);
    }

    @Override public void send(float[] buf, int off, int len, int dest, int tag) {
        job.check(global, "send");
        Mailbox box = job.boxes[group.members[dest]];
        box.lock.lock();
        try {
            float[] data = box.take(len);
            System.arraycopy(buf, off, data, 0, len);
            box.queue.add(new Message(global, tag, data, len));
            box.arrived.signalAll();
        } finally {
            box.lock.unlock();
        }
        bytes += 4L * len;
    }

    @Override public void recv(float[] buf, int off, int len, int src, int tag) {
        int from = group.members[src];
        Mailbox box = job.boxes[global];
        long deadline = System.nanoTime() + job.timeoutNanos;
        box.lock.lock();
        try {
            while (true) {
                job.check(global, "recv");
                for (var it = box.queue.iterator(); it.hasNext(); ) {
                    Message m = it.next();
                    if (m.src != from || m.tag != tag) continue;
                    if (m.len != len)
                        throw job.fail(global, new WaferException("rank " + global + ": recv of " + len + " floats from rank "
                                + from + " (tag " + tag + ") got a message of " + m.len));
                    it.remove();
                    System.arraycopy(m.data, 0, buf, off, len);
                    box.free.add(m.data);
                    return;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0)
                    throw job.fail(global, new WaferException("rank " + global + ": no message from rank " + from + " (tag " + tag
                            + ") within " + job.timeoutText() + "; it died or is stuck"));
                box.arrived.awaitNanos(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw job.fail(global, new WaferException("rank " + global + ": interrupted in recv"));
        } finally {
            box.lock.unlock();
        }
    }

    @Override public void close() { }

    /** Posts this rank's buffer, waits for every rank, and checks they all called the same collective. */
    private void enter(String op, Object buf, int off, int len) {
        job.check(global, op);
        group.buf[rank] = buf;
        group.off[rank] = off;
        group.len[rank] = len;
        group.op[rank] = op;
        group.calls[rank]++;
        String mismatch = await(op);
        if (mismatch != null) throw job.fail(global, new WaferException("rank " + global + ": collective mismatch: " + mismatch));
    }

    /**
     * Run by the last rank to arrive, inside the barrier: every rank's op and length are still the ones
     * of this collective. (Checked after the barrier instead, a fast rank could already have posted its
     * next collective, and a slow one would report a mismatch that never happened.)
     */
    private String verify() {
        for (int s = 1; s < size(); s++) {
            if (!group.op[0].equals(group.op[s]) || group.len[s] != group.len[0])
                return "rank " + group.members[0] + " called " + group.op[0] + "(" + group.len[0] + ") while rank "
                        + group.members[s] + " called " + group.op[s] + "(" + group.len[s] + ")";
        }
        return null;
    }

    private String await(String op) {
        try {
            return group.barrier.await(job, this);
        } catch (TimeoutException e) {
            List<Integer> missing = new ArrayList<>();
            for (int s = 0; s < size(); s++) if (group.calls[s] < group.calls[rank]) missing.add(group.members[s]);
            throw job.fail(global, new WaferException("rank " + global + ": timed out after " + job.timeoutText() + " in " + op
                    + (missing.isEmpty() ? "" : " waiting for rank(s) " + missing) + "; a rank died or is stuck"));
        } catch (Broken e) {
            throw job.peerFailed(global, op);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw job.fail(global, new WaferException("rank " + global + ": interrupted in " + op));
        }
    }

    /** State shared by every group of one run: the first failure, the timeout, the mailboxes. */
    private static final class Job {
        final long timeoutNanos;
        final Mailbox[] boxes;
        final List<Group> groups = new CopyOnWriteArrayList<>();
        volatile Throwable failure;
        volatile int failedRank = -1;

        Job(int n, Duration timeout) {
            this.timeoutNanos = timeout.toNanos();
            boxes = new Mailbox[n];
            for (int i = 0; i < n; i++) boxes[i] = new Mailbox();
        }

        String timeoutText() {
            double s = timeoutNanos / 1e9;
            return s == Math.rint(s) ? (long) s + " s" : s + " s";
        }

        /** Records the first failure and wakes every waiting rank so it fails too; returns t for throwing. */
        RuntimeException fail(int rank, Throwable t) {
            synchronized (this) {
                if (failure == null) {
                    failure = t;
                    failedRank = rank;
                }
            }
            for (Group g : groups) g.barrier.wake();
            for (Mailbox b : boxes) {
                b.lock.lock();
                try { b.arrived.signalAll(); } finally { b.lock.unlock(); }
            }
            return t instanceof RuntimeException re ? re : new WaferException("rank " + rank + " failed: " + t, t);
        }

        void check(int rank, String op) {
            if (failure != null) throw peerFailed(rank, op);
        }

        /** The error a rank sees when another rank's failure broke its wait. */
        WaferException peerFailed(int rank, String op) {
            Throwable f = failure;
            String why = f == null ? "another rank left the collective" : f.getMessage();
            if (f != null && !(why != null && why.startsWith("rank "))) why = "rank " + failedRank + " failed: " + f;
            return new WaferException("rank " + rank + ": stopped in " + op + " because " + why);
        }
    }

    /** One group's rendezvous slots. */
    private static final class Group {
        final int[] members;
        final Barrier barrier;
        final Object[] buf;
        final int[] off, len;
        final String[] op;
        final long[] calls;
        final Group[] made;

        Group(Job job, int[] members) {
            this.members = members.clone();
            int n = members.length;
            barrier = new Barrier(n);
            buf = new Object[n];
            off = new int[n];
            len = new int[n];
            op = new String[n];
            calls = new long[n];
            made = new Group[n];
            job.groups.add(this);
        }

        @Override public String toString() { return "group" + Arrays.toString(members); }
    }

    private record Message(int src, int tag, float[] data, int len) {}

    /** Messages waiting for one rank, and spent arrays to reuse for later messages. */
    private static final class Mailbox {
        final ReentrantLock lock = new ReentrantLock();
        final Condition arrived = lock.newCondition();
        final ArrayDeque<Message> queue = new ArrayDeque<>();
        final ArrayDeque<float[]> free = new ArrayDeque<>();

        float[] take(int len) {
            for (var it = free.iterator(); it.hasNext(); ) {
                float[] a = it.next();
                if (a.length >= len) { it.remove(); return a; }
            }
            return new float[len];
        }
    }

    /** Thrown inside {@link Barrier#await} when the job has failed. */
    private static final class Broken extends Exception {
        Broken() { super(null, null, false, false); }
    }

    /**
     * A reusable barrier that also wakes on the job's failure. (CyclicBarrier's reset can miss a rank
     * that is just about to wait; here the failure flag is checked under the same lock as the wait.)
     */
    private static final class Barrier {
        private final ReentrantLock lock = new ReentrantLock();
        private final Condition tripped = lock.newCondition();
        private final int parties;
        private int count;
        private long generation;

        Barrier(int parties) { this.parties = parties; }

        /** The last arriver's verdict for this generation: read by each rank before the next one can trip. */
        private String verdict;

        /** Waits for all parties; returns the mismatch the last arriver found (null when all called the same). */
        String await(Job job, ThreadCommunicator last) throws TimeoutException, Broken, InterruptedException {
            lock.lock();
            try {
                if (job.failure != null) throw new Broken();
                long gen = generation;
                if (++count == parties) {
                    verdict = last.verify();
                    count = 0;
                    generation++;
                    tripped.signalAll();
                    return verdict;
                }
                long left = job.timeoutNanos;
                while (gen == generation) {
                    if (job.failure != null) throw new Broken();
                    if (left <= 0) throw new TimeoutException();
                    left = tripped.awaitNanos(left);
                }
                return verdict;
            } finally {
                lock.unlock();
            }
        }

        void wake() {
            lock.lock();
            try { tripped.signalAll(); } finally { lock.unlock(); }
        }
    }
}
