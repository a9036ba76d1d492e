package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.tensor.Bf16Weights;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * The Hugging Face safetensors format: an 8-byte little-endian header length, a JSON header
 * {@code {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}}, then the data
 * (offsets are relative to the end of the header).
 *
 * <p>Reading: {@link #open(Path)} memory-maps the file(s) and parses only the headers; tensor data is touched
 * when a tensor is read, so opening a multi-GB checkpoint is cheap. F32, F16, BF16 (and F64) read as floats;
 * other dtypes (e.g. the BOOL {@code attn.bias} mask buffers of old GPT-2 files) can be listed and read raw
 * with {@link Reader#segment(String)}.
 *
 * <p>Writing: {@link #write} and {@link #writeSharded} stream tensors to a temporary file in the same
 * directory and rename it into place, so a crash never leaves a half-written checkpoint under the real name.
 * Tensors are written sorted by name, with contiguous offsets, {@code {"__metadata__": {"format": "pt"}}}
 * and the header padded with spaces to a multiple of 8 bytes (so F32 data starts 8-byte aligned).
 */
public final class SafeTensors {
    private SafeTensors() {}

    /** Hugging Face's file names. */
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    // Same limit the reference implementation uses: a larger header is a corrupt or hostile file, not a model.
    private static final long MAX_HEADER = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

    /** The safetensors dtypes, with their size in bytes. */
    public enum DType {
        F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U64(8), U32(4), U16(2), U8(1), BOOL(1),
        F8_E4M3(1), F8_E5M2(1);

        public final int bytes;

        DType(int bytes) { this.bytes = bytes; }

        boolean readsAsFloat() { return this == F32 || this == F16 || this == BF16 || this == F64; }
    }

    /** Name, dtype and shape of one stored tensor. {@code shape} is the stored array: do not modify it. */
    public record TensorInfo(String name, DType dtype, long[] shape) {
        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        public long byteSize() { return numel() * dtype.bytes; }

        @Override public String toString() { return name + " " + dtype + Arrays.toString(shape); }
    }

    /**
     * A tensor to write: row-major little-endian floats in {@code values} (a heap array's segment, or a read-only
     * mapping such as a frozen weight, written without a heap copy) whose count is the product of {@code shape},
     * written in the file's dtype; or, with {@code stored} set, values already in that dtype (int8 weights), written
     * byte for byte.
     */
    public record Tensor(long[] shape, Supplier<MemorySegment> source, long byteSize, DType stored) {
        public Tensor {
            long n = 1;
            for (long d : shape) {
                if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
                n *= d;
            }
            int bytes = stored == null ? Float.BYTES : stored.bytes;
            if (n * bytes != byteSize)
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n + " values but data has " + byteSize / bytes);
        }

        public Tensor(long[] shape, MemorySegment values, DType stored) { this(shape, () -> values, values.byteSize(), stored); }

        /**
         * A tensor whose values are made only when the writer reaches it, and dropped after: a model larger than memory
         * is converted one matrix at a time ({@code stored}: the dtype the values are in, written as they are).
         */
        public static Tensor lazy(long[] shape, DType stored, Supplier<MemorySegment> values) {
            long n = 1;
            for (long d : shape) n *= d;
            return new Tensor(shape, values, n * stored.bytes, stored);
        }

        /** The values: little-endian float32, or bytes of {@link #stored} (made now for a {@link #lazy} tensor). */
        public MemorySegment values() { return source.get(); }

        public Tensor(long[] shape, MemorySegment values) { this(shape, values, null); }

        public Tensor(long[] shape, float[] data) { this(shape, MemorySegment.ofArray(data)); }

        /** {@code Tensor.of(data, rows, cols)}. */
        public static Tensor of(float[] data, long... shape) { return new Tensor(shape, data); }

        public long numel() { return byteSize / (stored == null ? Float.BYTES : stored.bytes); }

        public float get(long i) { return values().getAtIndex(F32_LE, i); }

        /** The values as a new array. */
        public float[] data() { return values().toArray(F32_LE); }

        /** The dtype written for this tensor in a file of {@code dtype}. */
        DType in(DType dtype) { return stored != null ? stored : dtype; }
    }

    // ------------------------------------------------------------------------------------------ reading

    /**
     * Opens a checkpoint: a {@code .safetensors} file, a {@code model.safetensors.index.json} (sharded), or a
     * directory holding either ({@code model.safetensors} is preferred when both exist).
     */
    public static Reader open(Path fileOrDir) { return open(fileOrDir, false); }

    /**
     * {@link #open(Path)}; with {@code keepMapped} the files stay mapped after {@link Reader#close()} for as long as
     * a segment from {@link Reader#f32Segment} is reachable (the mapping belongs to the GC, not to the reader):
     * what frozen weights that are never copied to the heap need.
     */
    public static Reader open(Path fileOrDir, boolean keepMapped) {
        Path p = fileOrDir;
        if (Files.isDirectory(p)) {
            if (Files.isRegularFile(p.resolve(SINGLE_FILE))) p = p.resolve(SINGLE_FILE);
            else if (Files.isRegularFile(p.resolve(INDEX_FILE))) p = p.resolve(INDEX_FILE);
            else throw new WaferException(fileOrDir + ": directory has neither " + SINGLE_FILE + " nor " + INDEX_FILE);
        }
        if (!Files.exists(p)) throw new WaferException(p + ": no such file");
        Reader r = new Reader(keepMapped ? Arena.ofAuto() : Arena.ofShared(), keepMapped);
        try {
            if (p.getFileName().toString().endsWith(".json")) r.openIndex(p);
            else r.entries.putAll(r.parse(p, true));
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
        return r;
    }

    /**
     * An open checkpoint. Reads may run concurrently from several threads; {@link #close()} unmaps the files,
     * after which segments returned by {@link #segment} must not be used.
     */
    public static final class Reader implements TensorReader {
        private record Entry(TensorInfo info, MemorySegment file, long start, Path path) {}

        private final Arena arena;
        private final Map<String, Entry> entries = new TreeMap<>();
        private final Map<String, String> metadata = new LinkedHashMap<>();

        private final boolean keep;

        private Reader(Arena arena, boolean keep) {
            this.arena = arena;
            this.keep = keep;
        }

        @Override public List<String> names() { return List.copyOf(entries.keySet()); }

        public boolean contains(String name) { return entries.containsKey(name); }

        @Override public TensorInfo info(String name) { return entry(name).info; }

        /** The {@code __metadata__} string map of the file (of the first shard, for a sharded checkpoint). */
        public Map<String, String> metadata() { return Map.copyOf(metadata); }

        /** The file that holds {@code name}. */
        public Path file(String name) { return entry(name).path; }

        @Override public void read(String name, float[] dst, int off) {
            Entry e = entry(name);
            TensorInfo ti = e.info;
            if (!ti.dtype.readsAsFloat())
                throw new WaferException(e.path + ": tensor " + name + " has dtype " + ti.dtype + "; only F32, F16, BF16 and F64 read as floats");
            long n = ti.numel();
            if (off < 0 || n > dst.length - (long) off)
                throw new IllegalArgumentException("tensor " + name + " has " + n + " values; destination has room for " + (dst.length - (long) off));
            readFloats(e.file, e.start, ti.dtype, dst, off, (int) n);
        }

        /** The raw little-endian bytes of any tensor, read-only and possibly unaligned; valid until close. */
        public MemorySegment segment(String name) {
            Entry e = entry(name);
            return e.file.asSlice(e.start, e.info.byteSize());
        }

        /** {@inheritDoc} Valid until close (or, opened with keepMapped, while the segment is reachable). */
        @Override public MemorySegment contiguous(String name) { return segment(name); }

        @Override public void close() {
            // Closing twice (e.g. by try-with-resources after an explicit close) is harmless.
            // An automatic arena (keepMapped) cannot be closed: its mappings go when the GC finds them unused.
            if (!keep && arena.scope().isAlive()) arena.close();
        }

        private Entry entry(String name) {
            Entry e = entries.get(name);
            if (e == null) throw new WaferException("no tensor named '" + name + "' in the checkpoint (" + entries.size() + " tensors)");
            return e;
        }

        private void openIndex(Path index) {
            for (var s : readIndex(index).entrySet()) {
                Map<String, Entry> got = parse(s.getKey(), metadata.isEmpty());
                for (String name : s.getValue()) {
                    Entry e = got.get(name);
                    if (e == null) throw new WaferException(index + " says tensor " + name + " is in " + s.getKey().getFileName() + ", but that shard has no such tensor");
                    entries.put(name, e);
                }
            }
        }

        /** Maps one file, validates its header, returns its tensors. */
        private Map<String, Entry> parse(Path file, boolean keepMetadata) {
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                long size = ch.size();
                if (size < 8) throw new WaferException(file + ": only " + size + " bytes, too short for a safetensors file (needs an 8-byte header length)");
                seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            } catch (NoSuchFileException e) {
                throw new WaferException(file + ": no such file");
            } catch (IOException e) {
                throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
            }
            long size = seg.byteSize();
            long n = seg.get(I64_LE, 0);
            if (n < 0 || n > size - 8)
                throw new WaferException(file + ": header length " + Long.toUnsignedString(n) + " runs past the end of the file (" + size + " bytes); not a safetensors file or truncated");
            if (n > MAX_HEADER) throw new WaferException(file + ": header length " + n + " is over the 100 MB limit");
            long base = 8 + n, dataSize = size - base;
            JsonNode root;
            try {
                root = JSON.readTree(seg.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE));
            } catch (JsonProcessingException e) {
                throw new WaferException(file + ": header is not valid JSON: " + e.getOriginalMessage());
            } catch (IOException e) {
                throw new WaferException(file + ": cannot parse header: " + e.getMessage(), e);
            }
            if (root == null || !root.isObject()) throw new WaferException(file + ": header is not a JSON object");
            Map<String, Entry> out = new LinkedHashMap<>();
            for (var f : root.properties()) {
                String name = f.getKey();
                JsonNode t = f.getValue();
                if (name.equals("__metadata__")) {
                    if (keepMetadata && t.isObject()) t.properties().forEach(m -> metadata.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                String where = file + ": tensor " + name;
                JsonNode dt = t.get("dtype"), sh = t.get("shape"), off = t.get("data_offsets");
                if (dt == null || !dt.isTextual() || sh == null || !sh.isArray() || off == null || !off.isArray() || off.size() != 2)
                    throw new WaferException(where + ": header entry needs \"dtype\", \"shape\" and two \"data_offsets\"");
                DType dtype;
                try {
                    dtype = DType.valueOf(dt.asText());
                } catch (IllegalArgumentException e) {
                    throw new WaferException(where + ": unknown dtype '" + dt.asText() + "'");
                }
                long[] shape = new long[sh.size()];
                long numel = 1;
                for (int i = 0; i < shape.length; i++) {
                    JsonNode d = sh.get(i);
                    if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0)
                        throw new WaferException(where + ": bad shape " + sh);
                    shape[i] = d.asLong();
                    try {
                        numel = Math.multiplyExact(numel, shape[i]);
                    } catch (ArithmeticException x) {
                        throw new WaferException(where + ": shape " + sh + " is too large");
                    }
                }
                JsonNode b0 = off.get(0), b1 = off.get(1);
                if (!b0.isIntegralNumber() || !b1.isIntegralNumber() || !b0.canConvertToLong() || !b1.canConvertToLong()
                        || b0.asLong() < 0 || b1.asLong() < b0.asLong())
                    throw new WaferException(where + ": bad data_offsets " + off);
                long begin = b0.asLong(), end = b1.asLong();
                if (numel > Long.MAX_VALUE / dtype.bytes || numel * dtype.bytes != end - begin)
                    throw new WaferException(where + ": shape " + sh + " of " + dtype + " needs " + numel + " x " + dtype.bytes
                            + " bytes but data_offsets " + off + " span " + (end - begin));
                if (end > dataSize)
                    throw new WaferException(file + ": truncated: tensor " + name + " needs bytes up to " + end + " but the data section has " + dataSize);
                out.put(name, new Entry(new TensorInfo(name, dtype, shape), seg, base + begin, file));
            }
            // as the format's own reader: the tensors tile the data section exactly (no overlap, gap or trailing bytes)
            long at = 0;
            for (Entry e : out.values().stream().sorted(java.util.Comparator.comparingLong(e -> e.start)).toList()) {
                if (e.start - base != at)
                    throw new WaferException(file + ": tensor " + e.info.name() + " starts at byte " + (e.start - base) + " of the data, not at "
                            + at + " where the tensor before it ends (" + (e.start - base < at ? "tensors overlap" : "a gap") + ")");
                at += e.info.byteSize();
            }
            if (at != dataSize) throw new WaferException(file + ": " + (dataSize - at) + " bytes after the last tensor (the data section has "
                    + dataSize + ", the tensors cover " + at + ")");
            return out;
        }
    }

    /** Reads {@code count} values of {@code dtype} from {@code s} at byte {@code at} into {@code dst[off ..]}. */
    static void readFloats(MemorySegment s, long at, DType dtype, float[] dst, int off, int count) {
        if (dtype == DType.F32) MemorySegment.copy(s, F32_LE, at, dst, off, count);
        else for (int i = 0; i < count; i++) dst[off + i] = floatAt(s, at + (long) i * dtype.bytes, dtype);
    }

    /** One value of a float dtype as a float: F16 and BF16 widened exactly, F64 rounded. */
    static float floatAt(MemorySegment s, long at, DType dtype) {
        return switch (dtype) {
            case F32 -> s.get(F32_LE, at);
            case F16 -> Float.float16ToFloat(s.get(I16_LE, at));
            case BF16 -> Bf16Weights.fromBf16(s.get(I16_LE, at));
            case F64 -> (float) s.get(F64_LE, at);
            default -> throw new AssertionError(dtype);
        };
    }

    /**
     * A shard index as Hugging Face writes it ({@code {"weight_map": {tensor: shard file}}}): the tensor names of each
     * shard, by shard path. Every shard must be a file in the index's own directory.
     */
    static Map<Path, List<String>> readIndex(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(index));
        } catch (JsonProcessingException e) {
            throw new WaferException(index + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new WaferException(index + ": cannot read: " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) throw new WaferException(index + ": no \"weight_map\" object");
        Path dir = index.toAbsolutePath().getParent();
        Map<Path, List<String>> byShard = new LinkedHashMap<>();
        for (var f : map.properties()) {
            if (!f.getValue().isTextual()) throw new WaferException(index + ": weight_map entry for " + f.getKey() + " is not a file name");
            String name = f.getValue().asText();
            Path shard = dir.resolve(name).normalize();
            // a shard named "../x" or "/etc/x" would read outside the model directory
            if (name.isEmpty() || !dir.equals(shard.getParent()))
                throw new WaferException(index + ": shard '" + name + "' (for tensor " + f.getKey() + ") is not a file in " + dir);
            byShard.computeIfAbsent(shard, k -> new ArrayList<>()).add(f.getKey());
        }
        for (var s : byShard.entrySet())
            if (!Files.isRegularFile(s.getKey()))
                throw new WaferException(index + " names shard " + s.getKey().getFileName() + " (for tensor " + s.getValue().getFirst() + ") but " + s.getKey() + " is missing");
        return byShard;
    }

    // ------------------------------------------------------------------------------------------ writing

    /** Writes all tensors as F32 into one file. */
    public static void write(Path file, Map<String, Tensor> tensors) { write(file, tensors, DType.F32); }

    /** Writes all tensors into one file as F32, BF16 or F16 (both rounded to nearest even). */
    public static void write(Path file, Map<String, Tensor> tensors, DType dtype) {
        checkWritable(dtype);
        writeFile(file, new TreeMap<>(tensors), dtype);
    }

    /**
     * Writes a checkpoint into {@code dir} as Hugging Face does: tensors (sorted by name) fill shards of at most
     * {@code maxShardBytes} of tensor data (a larger tensor gets a shard of its own), named
     * {@code model-00001-of-0000N.safetensors}, plus {@code model.safetensors.index.json}. If everything fits in
     * one shard it writes plain {@code model.safetensors} and no index. The index is written last, so it only
     * ever names complete shards; stale {@code model*.safetensors} files and index from an earlier save in
     * {@code dir} are then deleted so {@link #open} cannot pick them up.
     *
     * @return the files written, in order (the index last)
     */
    public static List<Path> writeSharded(Path dir, Map<String, Tensor> tensors, DType dtype, long maxShardBytes) {
        checkWritable(dtype);
        if (maxShardBytes <= 0) throw new IllegalArgumentException("maxShardBytes must be positive");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new WaferException(dir + ": cannot create directory: " + e.getMessage(), e);
        }
        List<TreeMap<String, Tensor>> shards = new ArrayList<>();
        long current = 0, total = 0;
        for (var e : new TreeMap<>(tensors).entrySet()) {
            long bytes = e.getValue().numel() * e.getValue().in(dtype).bytes;
            if (shards.isEmpty() || (current + bytes > maxShardBytes && current > 0)) {
                shards.add(new TreeMap<>());
                current = 0;
            }
            shards.getLast().put(e.getKey(), e.getValue());
            current += bytes;
            total += bytes;
        }
        List<Path> written = new ArrayList<>();
        if (shards.size() <= 1) {
            Path f = dir.resolve(SINGLE_FILE);
            writeFile(f, shards.isEmpty() ? new TreeMap<>() : shards.getFirst(), dtype);
            written.add(f);
        } else {
            Map<String, Object> weightMap = new TreeMap<>();
            for (int i = 0; i < shards.size(); i++) {
                String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                Path f = dir.resolve(name);
                writeFile(f, shards.get(i), dtype);
                written.add(f);
                for (String t : shards.get(i).keySet()) weightMap.put(t, name);
            }
            Map<String, Object> index = new LinkedHashMap<>();
            index.put("metadata", Map.of("total_size", total));
            index.put("weight_map", weightMap);
            Path f = dir.resolve(INDEX_FILE);
            try {
                // Hugging Face writes json.dumps(indent=2, sort_keys=True): "key": value, no space before the colon.
                var pretty = new DefaultPrettyPrinter().withSeparators(
                        Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER));
                byte[] json = (JSON.writer(pretty).writeValueAsString(index) + "\n").getBytes(StandardCharsets.UTF_8);
                AtomicFiles.write(f, tmp -> Files.write(tmp, json));
            } catch (JsonProcessingException e) {
                throw new AssertionError(e);
            }
            written.add(f);
        }
        deleteStale(dir, written);
        return written;
    }

    private static void checkWritable(DType dtype) {
        if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16)
            throw new IllegalArgumentException("can write F32, BF16 or F16, not " + dtype);
    }

    private static void writeFile(Path file, TreeMap<String, Tensor> tensors, DType dtype) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("__metadata__", Map.of("format", "pt"));
        long off = 0;
        for (var e : tensors.entrySet()) {
            long bytes = e.getValue().numel() * e.getValue().in(dtype).bytes;
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("dtype", e.getValue().in(dtype).name());
            t.put("shape", e.getValue().shape());
            t.put("data_offsets", new long[]{off, off + bytes});
            header.put(e.getKey(), t);
            off += bytes;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new AssertionError(e);
        }
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        AtomicFiles.write(file, tmp -> {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
                writeFully(ch, head);
                // Stream through a small buffer: a checkpoint can be many GB.
                ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                for (Tensor t : tensors.values()) {
                    MemorySegment v = t.values(); // once: a lazy tensor makes its values here
                    for (long i = 0, n = t.stored() == null ? 0 : v.byteSize(); i < n; ) { // stored bytes, as they are
                        if (!buf.hasRemaining()) {
                            buf.flip();
                            writeFully(ch, buf);
                            buf.clear();
                        }
                        int k = (int) Math.min(buf.remaining(), n - i);
                        MemorySegment.copy(v, i, MemorySegment.ofBuffer(buf), 0, k); // the buffer's segment starts at its position
                        buf.position(buf.position() + k);
                        i += k;
                    }
                    for (long i = 0, n = t.stored() != null ? 0 : t.numel(); i < n; i++) {
                        float x = v.getAtIndex(F32_LE, i);
                        if (buf.remaining() < 4) {
                            buf.flip();
                            writeFully(ch, buf);
                            buf.clear();
                        }
                        switch (dtype) {
                            case F32 -> buf.putFloat(x);
                            case BF16 -> buf.putShort(Bf16Weights.toBf16(x));
                            case F16 -> buf.putShort(Float.floatToFloat16(x));
                            default -> throw new AssertionError(dtype);
                        }
                    }
                    if (v.isMapped()) v.unload(); // a source mapped from a file, written: out of this process's memory
                }
                buf.flip();
                writeFully(ch, buf);
                ch.force(true);
            }
        });
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    private static void deleteStale(Path dir, List<Path> keep) {
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                boolean ours = n.equals(SINGLE_FILE) || n.equals(INDEX_FILE) || SHARD_NAME.matcher(n).matches();
                if (ours && keep.stream().noneMatch(k -> k.getFileName().toString().equals(n))) Files.delete(f);
            }
        } catch (IOException e) {
            throw new WaferException(dir + ": cannot remove files of an earlier checkpoint: " + e.getMessage(), e);
        }
    }
}
