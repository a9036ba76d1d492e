package ai.wafer.parallel;

import ai.wafer.WaferException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Ranks as processes (on one machine or many) through Open MPI, called with the FFM API: launch with
 * {@code mpirun -np N ./wafer ...} (and {@code --hostfile} for machines). Nothing here is loaded
 * until {@link #world()} is called, so the rest of Wafer neither needs nor touches MPI.
 *
 * <p>Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_ERRORS_RETURN) are the addresses of
 * its global objects ({@code ompi_mpi_comm_world}, ...), so they are looked up as symbols. Heap
 * arrays cannot be handed to a native call that blocks, so each call copies through one reusable
 * native buffer. Errors come back as return codes (MPI_ERRORS_RETURN) and become WaferExceptions; a
 * process that dies is noticed by mpirun, which ends the others with a message naming it.
 *
 * <p>A peer that stops without dying (SIGSTOP, a cut network link) is another matter: Open MPI waits for it
 * forever, spinning. So every call is watched: it records when it began, and a daemon thread ends this
 * process (exit 2, after one line naming the rank, the call and the timeout) when a call has run longer than
 * the timeout; mpirun then ends the job, as it does when a rank dies.
 */
public final class MpiCommunicator implements Communicator {
    private static final String[] LIBS = {
            "/usr/lib/x86_64-linux-gnu/libmpi.so.40", "/usr/lib/aarch64-linux-gnu/libmpi.so.40",
            "/usr/lib64/openmpi/lib/libmpi.so.40", "/usr/local/lib/libmpi.so.40", "/opt/homebrew/lib/libmpi.40.dylib"};
    /**
     * One thread at a time calls MPI, but not always the main one: data parallelism all-reduces gradient buckets on
     * a comm thread while backward runs (the main thread makes no MPI call meanwhile).
     */
    private static final int MPI_THREAD_SERIALIZED = 2;
    private static final MemorySegment IN_PLACE = MemorySegment.ofAddress(1);

    private static Native mpi;                 // loaded by world()
    private static MpiCommunicator worldComm;
    private static int worldRank;

    // The call in progress (one at a time: MPI_THREAD_SERIALIZED), for the watchdog; callStart 0 = none.
    private static volatile long callStart;
    private static volatile String callName;
    private static volatile MpiCommunicator callComm;
    private static volatile int callPeer;
    private static volatile long timeoutNanos = ThreadCommunicator.DEFAULT_TIMEOUT.toNanos();

    private final MemorySegment comm;          // MPI_Comm handle
    private final boolean isWorld;
    private final int rank, size;
    private long bytes;
    private MemorySegment buf = MemorySegment.NULL;
    private final Arena arena = Arena.ofShared();
    private final List<MemorySegment[]> pendingSends = new ArrayList<>(); // {request slot, data}

    private MpiCommunicator(MemorySegment comm, boolean isWorld) {
        this.comm = comm;
        this.isWorld = isWorld;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check((int) mpi.commRank.invokeExact(comm, out), "MPI_Comm_rank");
            rank = out.get(JAVA_INT, 0);
            check((int) mpi.commSize.invokeExact(comm, out), "MPI_Comm_size");
            size = out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The job's world: loads Open MPI and initialises it on first use (from the thread that will call MPI). */
    public static synchronized MpiCommunicator world() {
        if (worldComm != null) return worldComm;
        mpi = new Native();
        worldComm = new MpiCommunicator(mpi.commWorld, true);
        worldRank = worldComm.rank;
        Thread w = new Thread(MpiCommunicator::watch, "mpi-watchdog");
        w.setDaemon(true);
        w.start();
        return worldComm;
    }

    /** The world, with any MPI call that takes longer than {@code timeout} ending this process. */
    public static MpiCommunicator world(Duration timeout) {
        timeoutNanos = timeout.toNanos();
        return world();
    }

    /** The watchdog's loop: checks the call in progress about once a second (more often for short timeouts). */
    private static void watch() {
        while (true) {
            long t = timeoutNanos;
            try {
                Thread.sleep(Math.clamp(t / 4_000_000, 10, 1000));
            } catch (InterruptedException e) {
                return;
            }
            long start = callStart;
            if (start == 0 || System.nanoTime() - start < t) continue;
            MpiCommunicator c = callComm;
            String name = callName;
            int peer = callPeer;
            if (callStart != start) continue; // that call ended meanwhile
            double secs = t / 1e9;
            System.err.printf("wafer: rank %d: timed out after %s s in %s%s over %s; a rank stopped answering or the network is cut:"
                            + " ending this process%n", worldRank, secs == Math.rint(secs) ? String.valueOf((long) secs) : String.valueOf(secs),
                    name, peer >= 0 ? " with rank " + peer : "",
                    c.isWorld ? "the world (" + c.size + " ranks)" : "a group of " + c.size + " ranks (rank " + c.rank + " there)");
            System.err.flush();
            Runtime.getRuntime().halt(2);
        }
    }

    @Override public int rank() { return rank; }
    @Override public int size() { return size; }
    @Override public long bytesSent() { return bytes; }

    /** The native staging buffer, grown to at least {@code n} bytes. */
    private MemorySegment staging(long n) {
        if (buf.byteSize() < n) buf = arena.allocate(Math.max(n, 2 * buf.byteSize()), 64);
        return buf;
    }

    @Override public void allReduceSum(float[] a, int off, int len) {
        allReduce(MemorySegment.ofArray(a).asSlice(4L * off, 4L * len), len, mpi.floatType);
    }

    @Override public void allReduceSum(double[] a, int off, int len) {
        allReduce(MemorySegment.ofArray(a).asSlice(8L * off, 8L * len), len, mpi.doubleType);
    }

    /** In place on {@code heap} (len values of {@code type}), through the staging buffer. */
    private void allReduce(MemorySegment heap, int len, MemorySegment type) {
        if (len == 0) return;
        long n = heap.byteSize();
        MemorySegment s = staging(n);
        MemorySegment.copy(heap, 0, s, 0, n);
        call(() -> (int) mpi.allreduce.invokeExact(IN_PLACE, s, len, type, mpi.opSum, comm), "MPI_Allreduce");
        MemorySegment.copy(s, 0, heap, 0, n);
        bytes += Traffic.allReduce(n, size);
    }

    @Override public void reduceScatterSum(float[] a, int off, int count) {
        if (count == 0) return;
        long n = (long) count * size;
        MemorySegment s = staging(4L * (n + count));
        MemorySegment in = s.asSlice(0, 4L * n), out = s.asSlice(4L * n, 4L * count);
        MemorySegment.copy(a, off, in, JAVA_FLOAT, 0, (int) n);
        call(() -> (int) mpi.reduceScatterBlock.invokeExact(in, out, count, mpi.floatType, mpi.opSum, comm), "MPI_Reduce_scatter_block");
        MemorySegment.copy(out, JAVA_FLOAT, 0, a, off + rank * count, count);
        bytes += Traffic.reduceScatter(4L * n, size);
    }

    @Override public void allGather(float[] a, int off, int count) {
        if (count == 0) return;
        int n = count * size;
        MemorySegment s = staging(4L * n);
        MemorySegment.copy(a, off + rank * count, s, JAVA_FLOAT, 4L * rank * count, count);
        call(() -> (int) mpi.allgather.invokeExact(IN_PLACE, 0, mpi.floatType, s, count, mpi.floatType, comm), "MPI_Allgather");
        MemorySegment.copy(s, JAVA_FLOAT, 0, a, off, n);
        bytes += Traffic.allGather(4L * n, size);
    }

    /** Non-blocking send from a private copy; the copy is freed once MPI reports the send complete. */
    @Override public void send(float[] a, int off, int len, int dest, int tag) {
        MemorySegment data = arena.allocate(Math.max(4L * len, 4), 64);
        MemorySegment.copy(a, off, data, JAVA_FLOAT, 0, len);
        MemorySegment req = arena.allocate(ADDRESS);
        call(() -> (int) mpi.isend.invokeExact(data, len, mpi.floatType, dest, tag, comm, req), "MPI_Isend", dest);
        pendingSends.add(new MemorySegment[]{req, data});
        bytes += 4L * len;
        if (pendingSends.size() > 64) completeSends();
    }

    @Override public void recv(float[] a, int off, int len, int src, int tag) {
        MemorySegment s = staging(Math.max(4L * len, 4));
        call(() -> (int) mpi.recv.invokeExact(s, len, mpi.floatType, src, tag, comm, MemorySegment.NULL), "MPI_Recv", src);
        MemorySegment.copy(s, JAVA_FLOAT, 0, a, off, len);
    }

    private void completeSends() {
        for (MemorySegment[] p : pendingSends) call(() -> (int) mpi.waitReq.invokeExact(p[0], MemorySegment.NULL), "MPI_Wait (a send)");
        pendingSends.clear(); // the staging copies stay in the arena until close; sends are rare (pipeline boundaries)
    }

    @Override public void barrier() {
        completeSends();
        call(() -> (int) mpi.barrier.invokeExact(comm), "MPI_Barrier");
    }

    @Override public Communicator split(int color, int key) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            call(() -> (int) mpi.commSplit.invokeExact(comm, color, key, out), "MPI_Comm_split");
            MemorySegment c = out.get(ADDRESS, 0);
            call(() -> (int) mpi.setErrhandler.invokeExact(c, mpi.errorsReturn), "MPI_Comm_set_errhandler");
            return new MpiCommunicator(c, false);
        }
    }

    /** A sub-group frees its communicator; the world finalises MPI (after which no MPI call may follow). */
    @Override public synchronized void close() {
        if (mpi == null) return;
        completeSends();
        if (isWorld) {
            if (worldComm != this) return;
            call(() -> (int) mpi.finalizeFn.invokeExact(), "MPI_Finalize");
            worldComm = null;
        } else {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment h = a.allocate(ADDRESS);
                h.set(ADDRESS, 0, comm);
                call(() -> (int) mpi.commFree.invokeExact(h), "MPI_Comm_free");
            }
        }
        arena.close();
    }

    @FunctionalInterface private interface MpiCall { int call() throws Throwable; }

    private void call(MpiCall c, String what) { call(c, what, -1); }

    /** Makes the call under the watchdog's eye; {@code peer}: the other rank of a point-to-point call, or -1. */
    private void call(MpiCall c, String what, int peer) {
        int rc;
        callName = what;
        callComm = this;
        callPeer = peer;
        callStart = System.nanoTime();
        try {
            rc = c.call();
        } catch (Throwable t) {
            throw rethrow(t);
        } finally {
            callStart = 0;
        }
        if (rc != 0) throw new WaferException("rank " + rank + ": " + what + " failed: " + mpi.errorString(rc)
                + " (a rank died, or the ranks called different collectives)");
    }

    private static void check(int rc, String what) {
        if (rc != 0) throw new WaferException(what + " failed: " + mpi.errorString(rc));
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new WaferException("MPI call failed: " + t, t);
    }

    /** The library and its entry points. */
    private static final class Native {
        final MethodHandle commRank, commSize, allreduce, reduceScatterBlock, allgather, isend, recv, waitReq,
                barrier, commSplit, commFree, setErrhandler, finalizeFn, errorStringFn;
        final MemorySegment commWorld, floatType, doubleType, opSum, errorsReturn;

        Native() {
            Linker linker = Linker.nativeLinker();
            String path = null;
            String env = System.getenv("WAFER_MPI_LIB");
            if (env != null && !env.isBlank()) path = env;
            else for (String p : LIBS) if (Files.exists(Path.of(p))) { path = p; break; }
            if (path == null) path = "libmpi.so.40";
            try {
                // Open MPI dlopens its components, which expect libmpi's symbols global: load it RTLD_GLOBAL first.
                MethodHandle dlopen = linker.downcallHandle(linker.defaultLookup().findOrThrow("dlopen"),
                        FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
                MethodHandle setenv = linker.downcallHandle(linker.defaultLookup().findOrThrow("setenv"),
                        FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment h = (MemorySegment) dlopen.invokeExact(a.allocateFrom(path), 0x2 | 0x100); // RTLD_NOW | RTLD_GLOBAL
                    if (h.address() == 0) throw new WaferException("cannot load Open MPI from " + path);
                    // The JVM relies on SIGSEGV/SIGBUS for itself; Open MPI's backtrace handlers would take them over.
                    int ignored = (int) setenv.invokeExact(a.allocateFrom("OMPI_MCA_opal_signal"), a.allocateFrom(""), 0);
                }
            } catch (WaferException e) {
                throw e;
            } catch (Throwable t) {
                throw new WaferException("cannot load Open MPI (" + path + "): " + t.getMessage()
                        + "; install it (Debian: apt-get install openmpi-bin libopenmpi-dev) or set WAFER_MPI_LIB", t);
            }
            SymbolLookup lib = path.contains("/") ? SymbolLookup.libraryLookup(Path.of(path), Arena.global())
                    : SymbolLookup.libraryLookup(path, Arena.global());
            FunctionDescriptor collective = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
            commRank = h(linker, lib, "MPI_Comm_rank", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
            commSize = h(linker, lib, "MPI_Comm_size", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
            allreduce = h(linker, lib, "MPI_Allreduce", collective);
            reduceScatterBlock = h(linker, lib, "MPI_Reduce_scatter_block", collective);
            allgather = h(linker, lib, "MPI_Allgather",
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
            isend = h(linker, lib, "MPI_Isend",
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
            recv = h(linker, lib, "MPI_Recv",
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
            waitReq = h(linker, lib, "MPI_Wait", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
            barrier = h(linker, lib, "MPI_Barrier", FunctionDescriptor.of(JAVA_INT, ADDRESS));
            commSplit = h(linker, lib, "MPI_Comm_split", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
            commFree = h(linker, lib, "MPI_Comm_free", FunctionDescriptor.of(JAVA_INT, ADDRESS));
            setErrhandler = h(linker, lib, "MPI_Comm_set_errhandler", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
            finalizeFn = h(linker, lib, "MPI_Finalize", FunctionDescriptor.of(JAVA_INT));
            errorStringFn = h(linker, lib, "MPI_Error_string", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
            commWorld = lib.findOrThrow("ompi_mpi_comm_world");
            floatType = lib.findOrThrow("ompi_mpi_float");
            doubleType = lib.findOrThrow("ompi_mpi_double");
            opSum = lib.findOrThrow("ompi_mpi_op_sum");
            errorsReturn = lib.findOrThrow("ompi_mpi_errors_return");
            MethodHandle initialized = h(linker, lib, "MPI_Initialized", FunctionDescriptor.of(JAVA_INT, ADDRESS));
            MethodHandle initThread = h(linker, lib, "MPI_Init_thread",
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
            try (Arena a = Arena.ofConfined()) {
                MemorySegment flag = a.allocate(JAVA_INT);
                int rc = (int) initialized.invokeExact(flag);
                if (rc == 0 && flag.get(JAVA_INT, 0) == 0) {
                    rc = (int) initThread.invokeExact(MemorySegment.NULL, MemorySegment.NULL, MPI_THREAD_SERIALIZED, flag);
                    if (rc != 0) throw new WaferException("MPI_Init_thread failed with code " + rc);
                }
                rc = (int) setErrhandler.invokeExact(commWorld, errorsReturn);
                if (rc != 0) throw new WaferException("MPI_Comm_set_errhandler failed with code " + rc);
            } catch (WaferException e) {
                throw e;
            } catch (Throwable t) {
                throw new WaferException("MPI initialisation failed: " + t, t);
            }
        }

        private static MethodHandle h(Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
            return linker.downcallHandle(lib.findOrThrow(name), fd);
        }

        String errorString(int code) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(512), n = a.allocate(JAVA_INT);
                int rc = (int) errorStringFn.invokeExact(code, s, n);
                return rc == 0 ? s.getString(0) : "MPI error " + code;
            } catch (Throwable t) {
                return "MPI error " + code;
            }
        }
    }

}
