package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.io.SafeTensors.DType;
import ai.wafer.io.SafeTensors.TensorInfo;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * PyTorch's checkpoint format as {@code torch.save} has written it since 1.6 ({@code pytorch_model.bin}, or shards
 * {@code pytorch_model-0000k-of-0000n.bin} with {@code pytorch_model.bin.index.json}), read without running anything.
 *
 * <p>The file is a zip archive of stored (uncompressed) entries: {@code <name>/data.pkl}, a pickle of the state dict,
 * and {@code <name>/data/<key>}, the raw little-endian bytes of each storage. The pickle is read by {@link Unpickler},
 * which knows only the opcodes a state dict uses and only the globals that rebuild tensors; a pickle naming any
 * other global ({@code os.system}, {@code builtins.eval}, ...) is refused with its name, and nothing in it runs.
 * The archive is memory-mapped, so storages are used in place: a contiguous F32 tensor is a slice of the mapping
 * ({@link #f32Segment}), as a safetensors tensor is. Tensors are views (storage, offset, sizes, strides): several
 * may share one storage (tied wte and lm_head), and a non-contiguous one is gathered when it is read.
 */
public final class TorchCheckpoint implements TensorReader {
    public static final String SINGLE_FILE = "pytorch_model.bin", INDEX_FILE = "pytorch_model.bin.index.json";

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A tensor: a view of {@code storage} (its bytes) from element {@code offset} with {@code stride} per dimension. */
    private record Entry(TensorInfo info, MemorySegment storage, long offset, long[] stride, Path path) {
        boolean contiguous() {
            long want = 1;
            for (int d = stride.length - 1; d >= 0; d--) {
                if (info.shape()[d] != 1 && stride[d] != want) return false;
                want *= info.shape()[d];
            }
            return true;
        }
    }

    private final Arena arena;
    private final boolean keep;
    private final Map<String, Entry> entries = new TreeMap<>();

    private TorchCheckpoint(boolean keepMapped) {
        this.keep = keepMapped;
        this.arena = keepMapped ? Arena.ofAuto() : Arena.ofShared();
    }

    /**
     * Opens a {@code .bin} file, a {@code pytorch_model.bin.index.json}, or a directory holding either
     * ({@code pytorch_model.bin} preferred). With {@code keepMapped} the files stay mapped after {@link #close()} for as
     * long as a segment from {@link #f32Segment} is reachable, as {@link SafeTensors#open(Path, boolean)}.
     */
    public static TorchCheckpoint open(Path fileOrDir, boolean keepMapped) {
        Path p = fileOrDir;
        if (Files.isDirectory(p)) {
            p = Files.isRegularFile(p.resolve(SINGLE_FILE)) ? p.resolve(SINGLE_FILE) : p.resolve(INDEX_FILE);
            if (!Files.isRegularFile(p)) throw new WaferException(fileOrDir + ": directory has neither " + SINGLE_FILE + " nor " + INDEX_FILE);
        }
        TorchCheckpoint r = new TorchCheckpoint(keepMapped);
        try {
            if (p.getFileName().toString().endsWith(".json")) {
                for (var s : SafeTensors.readIndex(p).entrySet()) {
                    Map<String, Entry> got = r.parse(s.getKey());
                    for (String name : s.getValue()) {
                        Entry e = got.get(name);
                        if (e == null) throw new WaferException(p + " says tensor " + name + " is in " + s.getKey().getFileName() + ", but that shard has no such tensor");
                        r.entries.put(name, e);
                    }
                }
            } else r.entries.putAll(r.parse(p));
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
        return r;
    }

    @Override public List<String> names() { return List.copyOf(entries.keySet()); }

    @Override public TensorInfo info(String name) { return entry(name).info; }

    @Override public void read(String name, float[] dst, int off) {
        Entry e = entry(name);
        DType dtype = e.info.dtype();
        if (dtype == DType.BOOL) throw new WaferException(e.path + ": tensor " + name + " is a BOOL tensor (a mask), not floats");
        long n = e.info.numel();
        if (off < 0 || n > dst.length - (long) off)
            throw new IllegalArgumentException("tensor " + name + " has " + n + " values; destination has room for " + (dst.length - (long) off));
        if (e.contiguous()) {
            SafeTensors.readFloats(e.storage, e.offset * dtype.bytes, dtype, dst, off, (int) n);
            return;
        }
        long[] shape = e.info.shape(), index = new long[shape.length];
        long at = e.offset; // the element under index, walked in row-major order
        for (int i = 0; i < n; i++) {
            dst[off + i] = SafeTensors.floatAt(e.storage, at * dtype.bytes, dtype);
            for (int d = shape.length - 1; d >= 0; d--) {
                at += e.stride[d];
                if (++index[d] < shape[d]) break;
                at -= e.stride[d] * shape[d];
                index[d] = 0;
            }
        }
    }

    @Override public MemorySegment contiguous(String name) {
        Entry e = entry(name);
        if (!e.contiguous()) return null;
        return e.storage.asSlice(e.offset * e.info.dtype().bytes, e.info.byteSize());
    }

    @Override public void close() {
        // an automatic arena (keepMapped) cannot be closed: its mappings go when the GC finds them unused
        if (!keep && arena.scope().isAlive()) arena.close();
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new WaferException("no tensor named '" + name + "' in the checkpoint (" + entries.size() + " tensors)");
        return e;
    }

    // ------------------------------------------------------------------------------------------ the archive

    /** Maps one {@code .bin} file and returns its tensors. */
    private Map<String, Entry> parse(Path file) {
        MemorySegment seg;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        } catch (NoSuchFileException e) {
            throw new WaferException(file + ": no such file");
        } catch (IOException e) {
            throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
        }
        if (seg.byteSize() >= 4 && seg.get(U32, 0) != 0x04034b50) {
            // a pickle stream (0x80 = PROTO) or a tar: both read only by running the pickle, which is what this reader avoids
            throw new WaferException(file + ": not a zip archive: " + (seg.get(ValueLayout.JAVA_BYTE, 0) == (byte) 0x80
                    ? "PyTorch's legacy format (torch.save before 1.6, or with _use_new_zipfile_serialization=False)" : "not a PyTorch checkpoint")
                    + ", which cannot be read without running its pickle. Re-save it with PyTorch 1.6 or later, in Python and only"
                    + " if you trust the file: torch.save(torch.load(f, map_location=\"cpu\"), f)");
        }
        Map<String, MemorySegment> zip;
        try {
            zip = zipEntries(seg, file);
        } catch (IndexOutOfBoundsException e) { // a length or offset in the zip records that points outside the file
            throw new WaferException(file + ": corrupt or truncated zip archive (" + e.getMessage() + ")");
        }
        String pkl = zip.keySet().stream().filter(n -> n.endsWith("/data.pkl") && n.indexOf('/') == n.length() - 9).findFirst()
                .orElseThrow(() -> new WaferException(file + ": a zip archive without <name>/data.pkl: not a torch.save checkpoint"));
        String prefix = pkl.substring(0, pkl.length() - "data.pkl".length());
        MemorySegment order = zip.get(prefix + "byteorder");
        if (order != null && !text(order).equals("little"))
            throw new WaferException(file + ": storages are " + text(order) + "-endian; only little-endian is read");
        MemorySegment version = zip.get(prefix + "version");
        if (version != null && !text(version).matches("[123]"))
            throw new WaferException(file + ": archive format version " + text(version) + " is not one this reader knows (1 to 3)");
        // other entries (.data/serialization_id, .format_version) identify the writer; they say nothing about values
        Map<String, Object> dict = new Unpickler(zip.get(pkl).toArray(ValueLayout.JAVA_BYTE), file + ": " + pkl).load();
        Map<String, Entry> out = new LinkedHashMap<>();
        for (var kv : dict.entrySet()) {
            String name = kv.getKey();
            if (!(kv.getValue() instanceof Unpickler.Tensor t))
                throw new WaferException(file + ": " + name + " is not a tensor (a state dict of tensors is needed, not a training checkpoint)");
            MemorySegment storage = zip.get(prefix + "data/" + t.storage().key());
            if (storage == null) throw new WaferException(file + ": tensor " + name + " needs storage " + prefix + "data/" + t.storage().key() + ", which the archive lacks");
            DType dtype = t.storage().dtype();
            long bytes, last = t.offset(); // last: the last element the view reaches
            try {
                bytes = Math.multiplyExact(t.storage().numel(), dtype.bytes);
                long numel = 1;
                for (int d = 0; d < t.shape().length; d++) {
                    numel = Math.multiplyExact(numel, t.shape()[d]);
                    last = Math.addExact(last, Math.multiplyExact(Math.max(0, t.shape()[d] - 1), t.stride()[d]));
                }
                if (numel == 0) last = -1; // an empty tensor reaches nothing
            } catch (ArithmeticException x) {
                throw new WaferException(file + ": tensor " + name + ": sizes " + Arrays.toString(t.shape()) + " overflow");
            }
            if (storage.byteSize() != bytes)
                throw new WaferException(file + ": storage " + t.storage().key() + " holds " + storage.byteSize() + " bytes, but " + t.storage().numel()
                        + " " + dtype + " values need " + bytes);
            if (last >= t.storage().numel())
                throw new WaferException(file + ": tensor " + name + " " + Arrays.toString(t.shape()) + " (offset " + t.offset() + ", strides "
                        + Arrays.toString(t.stride()) + ") reaches past its storage of " + t.storage().numel() + " values");
            out.put(name, new Entry(new TensorInfo(name, dtype, t.shape()), storage, t.offset(), t.stride(), file));
        }
        return out;
    }

    private static String text(MemorySegment s) { return new String(s.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8).strip(); }

    /**
     * The archive's entries, by name, as slices of the mapping: the end-of-central-directory record (zip64 when the
     * file is over 4 GB) gives the central directory; each entry's local header gives where its data starts.
     */
    private static Map<String, MemorySegment> zipEntries(MemorySegment f, Path file) {
        long size = f.byteSize(), eocd = -1;
        for (long p = size - 22; p >= Math.max(0, size - 22 - 0xFFFF) && eocd < 0; p--) if (f.get(U32, p) == 0x06054b50) eocd = p;
        if (eocd < 0) throw new WaferException(file + ": truncated or not a zip archive (no end-of-central-directory record)");
        long count = Short.toUnsignedLong(f.get(U16, eocd + 10)), cd = Integer.toUnsignedLong(f.get(U32, eocd + 16));
        if (cd == 0xFFFFFFFFL || count == 0xFFFF) { // zip64: the real values are in the zip64 record the locator points to
            if (eocd < 20 || f.get(U32, eocd - 20) != 0x07064b50) throw new WaferException(file + ": truncated zip64 archive (no zip64 locator)");
            long rec = f.get(U64, eocd - 12);
            if (rec < 0 || rec > size - 56 || f.get(U32, rec) != 0x06064b50) throw new WaferException(file + ": corrupt zip64 end record");
            count = f.get(U64, rec + 32);
            cd = f.get(U64, rec + 48);
        }
        Map<String, MemorySegment> out = new HashMap<>();
        long p = cd;
        for (long i = 0; i < count; i++) {
            if (p < 0 || p > size - 46 || f.get(U32, p) != 0x02014b50) throw new WaferException(file + ": corrupt zip central directory (entry " + i + ")");
            int method = Short.toUnsignedInt(f.get(U16, p + 10));
            int nameLen = Short.toUnsignedInt(f.get(U16, p + 28)), extraLen = Short.toUnsignedInt(f.get(U16, p + 30));
            int commentLen = Short.toUnsignedInt(f.get(U16, p + 32));
            if (p + 46 + nameLen + extraLen > size) throw new WaferException(file + ": truncated zip central directory");
            String name = new String(f.asSlice(p + 46, nameLen).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            long length = Integer.toUnsignedLong(f.get(U32, p + 24)), local = Integer.toUnsignedLong(f.get(U32, p + 42));
            // zip64 extra field: the 64-bit values of those fields that hold 0xFFFFFFFF, in this order
            for (long x = p + 46 + nameLen, end = x + extraLen; x + 4 <= end; x += 4 + Short.toUnsignedInt(f.get(U16, x + 2))) {
                if (f.get(U16, x) != 1) continue;
                long v = x + 4;
                if (length == 0xFFFFFFFFL) { length = f.get(U64, v); v += 8; }
                if (Integer.toUnsignedLong(f.get(U32, p + 20)) == 0xFFFFFFFFL) v += 8; // compressed size: equal, for a stored entry
                if (local == 0xFFFFFFFFL) local = f.get(U64, v);
            }
            if (method != 0)
                throw new WaferException(file + ": entry " + name + " is compressed (zip method " + method + "); torch.save stores entries"
                        + " uncompressed, so the file was repacked: extract it and zip it again with no compression (zip -0)");
            if (local < 0 || local > size - 30 || f.get(U32, local) != 0x04034b50) throw new WaferException(file + ": corrupt zip entry " + name);
            long data = local + 30 + Short.toUnsignedInt(f.get(U16, local + 26)) + Short.toUnsignedInt(f.get(U16, local + 28));
            if (length < 0 || data + length > size) throw new WaferException(file + ": truncated: entry " + name + " runs past the end of the file");
            out.put(name, f.asSlice(data, length));
            p += 46 + nameLen + extraLen + commentLen;
        }
        return out;
    }
}
