package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.tensor.Bf16Weights;
import ai.wafer.io.SafeTensors.DType;
import ai.wafer.io.SafeTensors.Tensor;
import ai.wafer.testutil.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class SafeTensorsTest {
    static final Path LOCAL = Fixtures.FIXTURES;
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path tmp;

    // ------------------------------------------------------------------------ reference checkpoints

    @Test void readsGptTinyCheckpointWithItsConfigShapes() throws IOException {
        Path dir = Fixtures.fixture("gpt-tiny");
        JsonNode cfg = JSON.readTree(dir.resolve("config.json").toFile());
        int L = cfg.get("n_layer").asInt(), C = cfg.get("n_embd").asInt(), V = cfg.get("vocab_size").asInt(),
                P = cfg.get("n_positions").asInt();
        assertEquals(List.of(2, 48, 101, 32), List.of(L, C, V, P));
        try (var r = SafeTensors.open(dir)) {
            assertEquals(4 + 12 * L, r.names().size());
            assertTrue(r.names().stream().allMatch(n -> n.startsWith("transformer.")), r.names().toString());
            assertFalse(r.contains("lm_head.weight"), "tied head is not stored");
            assertEquals(Map.of("format", "pt"), r.metadata());
            assertShape(r, "transformer.wte.weight", V, C);
            assertShape(r, "transformer.wpe.weight", P, C);
            assertShape(r, "transformer.ln_f.weight", C);
            for (int i = 0; i < L; i++) {
                String h = "transformer.h." + i + ".";
                assertShape(r, h + "attn.c_attn.weight", C, 3 * C);
                assertShape(r, h + "attn.c_attn.bias", 3 * C);
                assertShape(r, h + "attn.c_proj.weight", C, C);
                assertShape(r, h + "mlp.c_fc.weight", C, 4 * C);
                assertShape(r, h + "mlp.c_proj.weight", 4 * C, C);
                assertShape(r, h + "ln_2.bias", C);
            }
            // Values cross-checked with numpy on the same file.
            float[] wte = r.floats("transformer.wte.weight");
            assertEquals(-0.030511917546391487f, wte[0]);
            assertEquals(0.0016672079218551517f, wte[wte.length - 1]);
            float[] lnf = new float[C + 3];
            r.read("transformer.ln_f.weight", lnf, 3);
            assertEquals(1.0580196380615234f, lnf[3]);
            assertEquals(47.93298828601837, sum(lnf), 1e-4);
            // Zero-copy view of the same data.
            MemorySegment seg = r.f32Segment("transformer.ln_f.weight");
            assertEquals(4L * C, seg.byteSize());
            assertEquals(lnf[4], seg.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4));
        }
        try (var r = SafeTensors.open(dir.resolve("expected/step1_logits.safetensors"))) {
            assertShape(r, "logits", 2, 8, V);
        }
    }

    @Test void readsLocalFixturesIncludingBoolBuffersAndUntiedHead() {
        try (var r = SafeTensors.open(LOCAL.resolve("gpt-buffers"))) {
            var mask = r.info("h.0.attn.bias");
            assertEquals(DType.BOOL, mask.dtype());
            assertArrayEquals(new long[]{1, 1, 16, 16}, mask.shape());
            assertEquals(256, r.segment("h.0.attn.bias").byteSize());
            assertError(() -> r.floats("h.0.attn.bias"), "h.0.attn.bias", "BOOL");
            assertNull(r.f32Segment("h.0.attn.bias"), "not F32: no in-place data");
            assertShape(r, "wte.weight", 50, 40);
        }
        try (var r = SafeTensors.open(LOCAL.resolve("gpt-untied"))) {
            assertShape(r, "lm_head.weight", 64, 32);
            assertShape(r, "transformer.wte.weight", 64, 32);
        }
        try (var r = SafeTensors.open(LOCAL.resolve("gpt-odd/model.safetensors"))) {
            assertShape(r, "transformer.h.2.mlp.c_fc.weight", 36, 100);
        }
    }

    // ------------------------------------------------------------------------ writing

    @Test void roundTripF32IsBitIdentical() throws IOException {
        Random rnd = new Random(1);
        float[] a = new float[3 * 5 * 7];
        for (int i = 0; i < a.length; i++) a[i] = (float) rnd.nextGaussian();
        float[] special = {0f, -0f, Float.NaN, Float.intBitsToFloat(0x7FA00001), Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.MIN_VALUE, Float.MAX_VALUE};
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("z.last", Tensor.of(a, 3, 5, 7));
        m.put("a.first", Tensor.of(special, 8));
        m.put("scalar", Tensor.of(new float[]{42f}));
        m.put("empty", Tensor.of(new float[0], 0, 4));
        Path f = tmp.resolve("rt.safetensors");
        SafeTensors.write(f, m);

        try (var r = SafeTensors.open(f)) {
            assertEquals(List.of("a.first", "empty", "scalar", "z.last"), r.names());
            for (var e : m.entrySet()) {
                assertArrayEquals(e.getValue().shape(), r.info(e.getKey()).shape());
                assertEquals(DType.F32, r.info(e.getKey()).dtype());
                float[] got = r.floats(e.getKey());
                assertEquals(e.getValue().data().length, got.length);
                for (int i = 0; i < got.length; i++)
                    assertEquals(Float.floatToRawIntBits(e.getValue().data()[i]), Float.floatToRawIntBits(got[i]), e.getKey() + "[" + i + "]");
            }
        }
        // The layout Hugging Face expects: padded header, metadata, sorted tensors, contiguous offsets.
        byte[] b = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8);
        String header = new String(b, 8, (int) n, StandardCharsets.UTF_8);
        JsonNode h = JSON.readTree(header);
        assertEquals("pt", h.get("__metadata__").get("format").asText());
        long end = 0;
        for (String name : List.of("a.first", "empty", "scalar", "z.last")) {
            assertEquals(end, h.get(name).get("data_offsets").get(0).asLong(), name);
            end = h.get(name).get("data_offsets").get(1).asLong();
        }
        assertEquals(b.length, 8 + n + end);
        assertFalse(Files.exists(tmp.resolve("rt.safetensors.tmp")), "temp file renamed away");
    }

    @Test void bf16RoundsToNearestEven() throws IOException {
        int[] in = {
                0x3F800000, // 1.0: exact
                0x3F808000, // halfway between 0x3F80 and 0x3F81: ties to even 0x3F80
                0x3F818000, // halfway between 0x3F81 and 0x3F82: ties to even 0x3F82
                0x3F808001, // just above halfway: up
                0x3F807FFF, // just below halfway: down
                0xBF80C000, // negative, above halfway: magnitude up
                0x7F7FFFFF, // largest float: rounds past the largest BF16 to +inf
                0x7F800000, // +inf stays
                0x80000000, // -0 stays
                0x00000001, // smallest subnormal: rounds to +0
                0x7FC00000, // NaN
                0x7F800001, // signalling NaN with only low payload bits: must not become inf
        };
        int[] want = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0x3F80, 0xBF81, 0x7F80, 0x7F80, 0x8000, 0x0000, 0x7FC0, 0x7FC0};
        float[] data = new float[in.length];
        for (int i = 0; i < in.length; i++) {
            data[i] = Float.intBitsToFloat(in[i]);
            assertEquals(want[i], Bf16Weights.toBf16(data[i]) & 0xFFFF, "case " + i);
        }
        Path f = tmp.resolve("bf16.safetensors");
        SafeTensors.write(f, Map.of("x", Tensor.of(data, 3, 4)), DType.BF16);
        try (var r = SafeTensors.open(f)) {
            assertEquals(DType.BF16, r.info("x").dtype());
            assertEquals(in.length * 2L, r.segment("x").byteSize());
            float[] got = r.floats("x");
            for (int i = 0; i < in.length; i++)
                assertEquals(want[i] << 16, Float.floatToRawIntBits(got[i]), "case " + i);
        }
    }

    @Test void f16IsWidenedExactly() throws IOException {
        short[] h = {0x3C00, (short) 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00, (short) 0x8000, 0x3555};
        float[] want = {1f, -2f, 0.5f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY, -0f, 0.333251953125f};
        ByteBuffer data = ByteBuffer.allocate(h.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (short s : h) data.putShort(s);
        Path f = tmp.resolve("f16.safetensors");
        rawFile(f, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]}}", data.array());
        try (var r = SafeTensors.open(f)) {
            assertEquals(DType.F16, r.info("w").dtype());
            float[] got = r.floats("w");
            for (int i = 0; i < h.length; i++)
                assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), "case " + i);
        }
    }

    @Test void shardedWriteAndRead() throws IOException {
        Map<String, Tensor> m = new LinkedHashMap<>();
        Random rnd = new Random(7);
        for (String name : List.of("a", "b", "c", "d", "e")) {
            float[] x = new float[name.equals("c") ? 300 : 40]; // c (1200 bytes) is bigger than a shard
            for (int i = 0; i < x.length; i++) x[i] = rnd.nextFloat();
            m.put(name, Tensor.of(x, x.length));
        }
        Path dir = tmp.resolve("ckpt");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("model.safetensors"), "stale"); // from an earlier unsharded save
        List<Path> files = SafeTensors.writeSharded(dir, m, DType.F32, 400);
        // a+b (320 bytes) | c alone | d+e
        List<String> names = files.stream().map(p -> p.getFileName().toString()).toList();
        assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors", "model.safetensors.index.json"), names);
        assertFalse(Files.exists(dir.resolve("model.safetensors")), "stale single file removed");

        JsonNode index = JSON.readTree(dir.resolve("model.safetensors.index.json").toFile());
        assertEquals(4 * (40 * 4 + 300), index.get("metadata").get("total_size").asLong());
        assertEquals("model-00001-of-00003.safetensors", index.get("weight_map").get("b").asText());
        assertEquals("model-00002-of-00003.safetensors", index.get("weight_map").get("c").asText());
        assertEquals("model-00003-of-00003.safetensors", index.get("weight_map").get("e").asText());

        for (Path open : List.of(dir, dir.resolve("model.safetensors.index.json"))) {
            try (var r = SafeTensors.open(open)) {
                assertEquals(List.of("a", "b", "c", "d", "e"), r.names());
                for (var e : m.entrySet()) assertArrayEquals(e.getValue().data(), r.floats(e.getKey()));
                assertEquals(dir.resolve("model-00002-of-00003.safetensors").toAbsolutePath(), r.file("c"));
            }
        }

        // Saving again, small enough for one file: plain model.safetensors, old shards and index gone.
        List<Path> one = SafeTensors.writeSharded(dir, Map.of("a", m.get("a")), DType.F32, 1 << 20);
        assertEquals(List.of(dir.resolve("model.safetensors")), one);
        try (var files2 = Files.list(dir)) {
            assertEquals(List.of("model.safetensors"), files2.map(p -> p.getFileName().toString()).toList());
        }
    }

    // ------------------------------------------------------------------------ errors

    @Test void missingFileAndDirectory() {
        assertError(() -> SafeTensors.open(tmp.resolve("nope.safetensors")), "nope.safetensors", "no such file");
        assertError(() -> SafeTensors.open(tmp), tmp.toString(), "neither model.safetensors nor model.safetensors.index.json");
    }

    @Test void fileShorterThanEightBytes() throws IOException {
        Path f = tmp.resolve("short.safetensors");
        Files.write(f, new byte[5]);
        assertError(() -> SafeTensors.open(f), "short.safetensors", "only 5 bytes");
    }

    @Test void headerLengthBeyondFile() throws IOException {
        Path f = tmp.resolve("long.safetensors");
        ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        Files.write(f, b.array());
        assertError(() -> SafeTensors.open(f), "long.safetensors", "header length 1000 runs past the end of the file (20 bytes)");
        // A negative (huge unsigned) length, as random bytes would give.
        Files.write(f, ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(-1).array());
        assertError(() -> SafeTensors.open(f), "long.safetensors", "18446744073709551615 runs past the end");
    }

    @Test void headerNotJson() throws IOException {
        Path f = tmp.resolve("bad.safetensors");
        rawFile(f, "{\"w\": {dtype", new byte[0]);
        assertError(() -> SafeTensors.open(f), "bad.safetensors", "header is not valid JSON");
        rawFile(f, "[1, 2]", new byte[0]);
        assertError(() -> SafeTensors.open(f), "bad.safetensors", "header is not a JSON object");
    }

    @Test void unknownDtype() throws IOException {
        Path f = tmp.resolve("dt.safetensors");
        rawFile(f, "{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,4]}}", new byte[4]);
        assertError(() -> SafeTensors.open(f), "dt.safetensors", "tensor w", "unknown dtype 'F12'");
    }

    @Test void shapeDisagreesWithOffsets() throws IOException {
        Path f = tmp.resolve("shape.safetensors");
        rawFile(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", new byte[24]);
        assertError(() -> SafeTensors.open(f), "shape.safetensors", "tensor w", "needs 6 x 4 bytes but data_offsets [0,20] span 20");
    }

    @Test void truncatedFile() throws IOException {
        Path f = tmp.resolve("trunc.safetensors");
        SafeTensors.write(f, Map.of("a", Tensor.of(new float[4], 4), "b", Tensor.of(new float[6], 2, 3)));
        byte[] b = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(b, b.length - 3));
        assertError(() -> SafeTensors.open(f), "trunc.safetensors", "truncated: tensor b needs bytes up to 40 but the data section has 37");
    }

    @Test void overlappingTensorsGapsAndTrailingBytesAreRefused() throws IOException {
        Path f = tmp.resolve("overlap.safetensors");
        rawFile(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]);
        assertError(() -> SafeTensors.open(f), "overlap.safetensors", "tensor b starts at byte 4", "tensors overlap");
        Path g = tmp.resolve("gap.safetensors");
        rawFile(g, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]);
        assertError(() -> SafeTensors.open(g), "gap.safetensors", "tensor b starts at byte 8", "a gap");
        Path t = tmp.resolve("trailing.safetensors");
        rawFile(t, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[13]);
        assertError(() -> SafeTensors.open(t), "trailing.safetensors", "5 bytes after the last tensor");
    }

    @Test void indexNamesMissingShard() {
        Path dir = tmp.resolve("sharded");
        SafeTensors.writeSharded(dir, Map.of("a", Tensor.of(new float[8], 8), "b", Tensor.of(new float[8], 8)), DType.F32, 32);
        assertDoesNotThrow(() -> SafeTensors.open(dir).close());
        assertDoesNotThrow(() -> Files.delete(dir.resolve("model-00002-of-00002.safetensors")));
        assertError(() -> SafeTensors.open(dir), "model.safetensors.index.json",
                "names shard model-00002-of-00002.safetensors (for tensor b)", "is missing");
    }

    @Test void unknownTensorAndSmallDestination() {
        Path f = tmp.resolve("x.safetensors");
        SafeTensors.write(f, Map.of("a", Tensor.of(new float[4], 2, 2)));
        try (var r = SafeTensors.open(f)) {
            assertError(() -> r.info("b"), "no tensor named 'b'");
            assertThrows(IllegalArgumentException.class, () -> r.read("a", new float[5], 2));
        }
        assertThrows(IllegalArgumentException.class, () -> Tensor.of(new float[5], 2, 2));
    }

    // ------------------------------------------------------------------------ helpers

    static void assertShape(SafeTensors.Reader r, String name, long... shape) {
        assertArrayEquals(shape, r.info(name).shape(), name);
    }

    static void assertError(Executable x, String... parts) {
        WaferException e = assertThrows(WaferException.class, x);
        for (String p : parts) assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' lacks '" + p + "'");
    }

    static double sum(float[] a) {
        double s = 0;
        for (float v : a) s += v;
        return s;
    }

    /** A safetensors file with a hand-written header. */
    static void rawFile(Path f, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Files.write(f, b.array());
    }
}
