package ai.wafer.io;

import ai.wafer.WaferException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;

/**
 * An llm.c token shard: a header of 256 little-endian int32 (magic 20240520, version 1, token count, the rest
 * zero), then the tokens as little-endian uint16. The reader memory-maps the file, so a multi-GB shard costs
 * no heap; it may be read from several threads at once.
 */
public final class TokenShard implements AutoCloseable {
    public static final int MAGIC = 20240520;
    public static final int VERSION = 1;
    public static final int HEADER_BYTES = 256 * 4;
    /** Token ids are stored as uint16. */
    public static final int MAX_TOKEN = 65535;

    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Arena arena;
    private final MemorySegment seg;
    private final long count;

    private TokenShard(Arena arena, MemorySegment seg, long count) {
        this.arena = arena;
        this.seg = seg;
        this.count = count;
    }

    /** Maps and validates a shard. */
    public static TokenShard open(Path file) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < HEADER_BYTES)
                throw new WaferException(file + ": only " + size + " bytes, shorter than the " + HEADER_BYTES + "-byte token shard header");
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            int magic = seg.get(I32_LE, 0), version = seg.get(I32_LE, 4), n = seg.get(I32_LE, 8);
            if (magic != MAGIC) throw new WaferException(file + ": bad magic " + magic + " (a token shard starts with " + MAGIC + ")");
            if (version != VERSION) throw new WaferException(file + ": token shard version " + version + " is not supported (only " + VERSION + ", uint16 tokens)");
            long expected = HEADER_BYTES + 2L * n;
            if (n < 0 || expected != size)
                throw new WaferException(file + ": header says " + n + " tokens (" + expected + " bytes) but the file has " + size + " bytes");
            return new TokenShard(arena, seg, n);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new WaferException(file + ": no such file");
        } catch (IOException e) {
            arena.close();
            throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Number of tokens. */
    public long size() { return count; }

    public int get(long i) {
        Objects.checkIndex(i, count);
        return Short.toUnsignedInt(seg.get(U16_LE, HEADER_BYTES + 2 * i));
    }

    /** Copies tokens {@code [start, start+len)} into {@code dst[off ..]}. */
    public void read(long start, int[] dst, int off, int len) {
        Objects.checkFromIndexSize(start, len, count);
        Objects.checkFromIndexSize(off, len, dst.length);
        long at = HEADER_BYTES + 2 * start;
        for (int i = 0; i < len; i++) dst[off + i] = Short.toUnsignedInt(seg.get(U16_LE, at + 2L * i));
    }

    /** Tokens {@code [start, start+len)} as a new array. */
    public int[] read(long start, int len) {
        int[] out = new int[len];
        read(start, out, 0, len);
        return out;
    }

    @Override public void close() {
        if (arena.scope().isAlive()) arena.close();
    }

    // ------------------------------------------------------------------------------------------ writing

    /** Writes {@code tokens} as a complete shard. */
    public static void write(Path file, int[] tokens) {
        try (Writer w = writer(file)) {
            w.append(tokens, 0, tokens.length);
        }
    }

    /** A streaming writer; the shard appears under {@code file} only when the writer is closed. */
    public static Writer writer(Path file) { return new Writer(file); }

    /**
     * Appends tokens to a temporary sibling file; {@link #close()} patches the count into the header and renames
     * the file into place, so a crash never leaves a shard whose header disagrees with its length. If an append
     * fails, {@link #abort()} (or close after the failure) discards the partial file.
     */
    public static final class Writer implements AutoCloseable {
        private final Path file, tmp;
        private final FileChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private long count;
        private boolean failed, closed;

        private Writer(Path file) {
            this.file = file.toAbsolutePath();
            this.tmp = this.file.resolveSibling(this.file.getFileName() + ".tmp");
            try {
                ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
                ByteBuffer zeros = ByteBuffer.allocate(HEADER_BYTES); // header placeholder, patched at close
                while (zeros.hasRemaining()) ch.write(zeros);
            } catch (IOException e) {
                throw new WaferException(file + ": cannot write: " + e.getMessage(), e);
            }
        }

        public long count() { return count; }

        public void append(int token) {
            check(token, count);
            if (!buf.hasRemaining()) flush();
            buf.putShort((short) token);
            count++;
        }

        public void append(int[] tokens, int off, int len) {
            Objects.checkFromIndexSize(off, len, tokens.length);
            for (int i = off; i < off + len; i++) append(tokens[i]);
        }

        private void check(int token, long position) {
            if (closed) throw new IllegalStateException(file + ": writer is closed");
            if (token < 0 || token > MAX_TOKEN) {
                failed = true;
                throw new WaferException(file + ": token id " + token + " at position " + position + " does not fit in uint16 (0.." + MAX_TOKEN + ")");
            }
            if (position >= Integer.MAX_VALUE) {
                failed = true;
                throw new WaferException(file + ": more than " + Integer.MAX_VALUE + " tokens do not fit in one shard (the header count is int32)");
            }
        }

        private void flush() {
            buf.flip();
            try {
                while (buf.hasRemaining()) ch.write(buf);
            } catch (IOException e) {
                failed = true;
                throw new WaferException(file + ": cannot write: " + e.getMessage(), e);
            }
            buf.clear();
        }

        /** Discards everything written so far. */
        public void abort() {
            if (closed) return;
            closed = true;
            try {
                ch.close();
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // nothing useful to do: the shard was being thrown away anyway
            }
        }

        /** Finishes the shard, unless an append failed, in which case the partial file is discarded. */
        @Override public void close() {
            if (closed) return;
            if (failed) {
                abort();
                return;
            }
            flush();
            ByteBuffer head = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
            head.putInt(MAGIC).putInt(VERSION).putInt((int) count).flip();
            closed = true;
            AtomicFiles.write(file, t -> {
                try (ch) {
                    while (head.hasRemaining()) ch.write(head, head.position()); // buffer offset == file offset
                    ch.force(true);
                }
            });
        }
    }
}
