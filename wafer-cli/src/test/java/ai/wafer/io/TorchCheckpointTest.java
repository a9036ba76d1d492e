package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.cli.Wafer;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Bf16Weights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.UnaryOperator;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static ai.wafer.io.SafeTensorsTest.assertError;
import static ai.wafer.testutil.Fixtures.fixture;
import static org.junit.jupiter.api.Assertions.*;

/**
 * PyTorch checkpoints written by real {@code torch.save} (tools/make_torch_fixtures.py, from the safetensors fixtures):
 * each reads to exactly its safetensors twin's values; files that would run code, that are cut short or that lack a
 * shard are refused with what is wrong.
 */
class TorchCheckpointTest {
    /** The twin's values as the fixture stores them: float32, or rounded to nearest even as torch's .half()/.bfloat16(). */
    static final UnaryOperator<float[]> SAME = a -> a,
            F16 = a -> { float[] b = a.clone(); for (int i = 0; i < b.length; i++) b[i] = Float.float16ToFloat(Float.floatToFloat16(b[i])); return b; },
            BF16 = a -> { float[] b = a.clone(); for (int i = 0; i < b.length; i++) b[i] = Bf16Weights.fromBf16(Bf16Weights.toBf16(b[i])); return b; };

    @Test void eachBinReadsAsItsSafetensorsTwin() {
        check("tied", "gpt-tiny", SafeTensors.DType.F32, SAME);
        check("untied-sharded", "gpt-untied", SafeTensors.DType.F32, SAME);
        check("view", "gpt-untied", SafeTensors.DType.F32, SAME);
        check("fp16", "gpt-tiny", SafeTensors.DType.F16, F16);
        check("bf16", "gpt-untied", SafeTensors.DType.BF16, BF16);
    }

    private static void check(String bin, String twin, SafeTensors.DType dtype, UnaryOperator<float[]> round) {
        Path dir = fixture("torch/" + bin);
        try (TorchCheckpoint r = TorchCheckpoint.open(dir, false); SafeTensors.Reader t = SafeTensors.open(fixture(twin))) {
            var want = new TreeSet<>(t.names());
            want.add("lm_head.weight"); // stored even when tied, as state_dict() has it
            for (int i = 0; i < 2; i++) want.addAll(List.of("transformer.h." + i + ".attn.bias", "transformer.h." + i + ".attn.masked_bias"));
            assertEquals(want, new TreeSet<>(r.names()), bin);
            for (String name : t.names()) {
                assertEquals(dtype, r.info(name).dtype(), bin + " " + name);
                assertArrayEquals(t.info(name).shape(), r.info(name).shape(), bin + " " + name);
                assertArrayEquals(round.apply(t.floats(name)), r.floats(name), bin + " " + name);
            }
            String head = t.names().contains("lm_head.weight") ? "lm_head.weight" : "transformer.wte.weight";
            assertArrayEquals(round.apply(t.floats(head)), r.floats("lm_head.weight"), bin + " lm_head");
            long p = ai.wafer.model.GptConfig.read(dir.resolve("config.json")).nPositions();
            SafeTensors.TensorInfo mask = r.info("transformer.h.1.attn.bias");
            assertEquals(SafeTensors.DType.BOOL, mask.dtype());
            assertArrayEquals(new long[] {1, 1, p, p}, mask.shape());
            assertError(() -> r.floats("transformer.h.1.attn.bias"), "BOOL");
            assertArrayEquals(new long[0], r.info("transformer.h.0.attn.masked_bias").shape());
            assertArrayEquals(new float[] {-1e4f}, r.floats("transformer.h.0.attn.masked_bias"));
        }
        // the model loader reads the same values, buffers dropped
        Gpt a = Checkpoint.load(dir), b = Checkpoint.load(fixture(twin));
        for (Parameter p : b.parameters()) assertArrayEquals(round.apply(p.data), a.parameter(p.name).data, bin + " loaded " + p.name);
    }

    @Test void storagesAreUsedInPlace() {
        try (TorchCheckpoint r = TorchCheckpoint.open(fixture("torch/tied"), false)) {
            // lm_head.weight shares wte's storage: one copy in the file, both views of it
            assertEquals(r.f32Segment("transformer.wte.weight").address(), r.f32Segment("lm_head.weight").address());
            assertNull(r.f32Segment("transformer.h.0.attn.bias"), "a BOOL tensor has no float data in place");
        }
        try (TorchCheckpoint r = TorchCheckpoint.open(fixture("torch/view"), false)) {
            // matrices saved as .t() views: strides (1, rows), so they are gathered, not mapped
            assertNull(r.f32Segment("transformer.h.0.attn.c_attn.weight"));
            // vectors saved as slices of one storage: contiguous at an offset, so mapped; consecutive slices
            var a = r.f32Segment("transformer.h.0.ln_1.weight");
            var b = r.f32Segment("transformer.h.0.ln_1.bias");
            assertNotNull(a);
            assertEquals(a.byteSize(), Math.abs(b.address() - a.address()), "ln_1.bias and ln_1.weight are neighbours in the shared storage");
        }
        try (TorchCheckpoint r = TorchCheckpoint.open(fixture("torch/fp16"), false)) {
            assertNull(r.f32Segment("transformer.wte.weight"), "F16 has no float32 data in place");
            assertTrue(r.mapped("transformer.wte.weight") instanceof ai.wafer.tensor.MappedHalfWeights, "F16 is used in place");
        }
    }

    @Test void loadFrozenKeepsTheBinsMatricesMapped() {
        Gpt heap = Checkpoint.load(fixture("gpt-tiny"));
        Gpt frozen = Checkpoint.loadFrozen(fixture("torch/tied"));
        for (Parameter p : frozen.parameters()) {
            assertEquals(p.shape.length == 2, p.isMapped(), p.name + " mapped");
            assertArrayEquals(heap.parameter(p.name).data, p.array(), p.name);
        }
        // a strided view cannot be mapped: read onto the heap, still exact
        Gpt view = Checkpoint.loadFrozen(fixture("torch/view")), twin = Checkpoint.load(fixture("gpt-untied"));
        for (Parameter p : view.parameters()) {
            assertFalse(p.isMapped(), p.name);
            assertArrayEquals(twin.parameter(p.name).data, p.array(), p.name);
        }
    }

    @Test void loadFrozenKeepsHalfPrecisionMatricesMappedInTheirDtype() {
        for (String dtype : new String[] {"fp16", "bf16"}) {
            Gpt heap = Checkpoint.load(fixture("torch/" + dtype)), frozen = Checkpoint.loadFrozen(fixture("torch/" + dtype));
            for (Parameter p : frozen.parameters()) {
                assertEquals(p.shape.length == 2, p.isMapped(), dtype + " " + p.name + " mapped");
                if (p.isMapped()) assertEquals(2L * p.size(), p.weights().bytes(), dtype + " " + p.name + " keeps 2 bytes a value");
                assertArrayEquals(heap.parameter(p.name).array(), p.array(), dtype + " " + p.name); // widened exactly, as read()
            }
        }
    }

    @Test void generateReadsTheBinAsItsTwin() {
        int[] prompt = {3, 14, 15, 92, 65};
        int[][] out = new int[2][];
        for (int i = 0; i < 2; i++) {
            var m = ai.wafer.generate.LoadedModel.load(fixture(i == 0 ? "torch/tied" : "gpt-tiny"), null, null, ai.wafer.generate.WeightType.F32);
            out[i] = new ai.wafer.generate.Generator(m.model(), null).generate(prompt, ai.wafer.generate.SamplingParams.greedy(12), null).tokens();
        }
        assertArrayEquals(out[1], out[0]);
    }

    @Test void aPickleNamingAnyOtherGlobalIsRefusedAndNothingRuns() throws IOException {
        // the fixture's pickle is os.system("touch " + MARKER), which pickle writes as the global posix.system
        Path marker = Path.of("/tmp/wafer-malicious-fixture-ran");
        Files.deleteIfExists(marker);
        assertError(() -> Checkpoint.load(fixture("torch/malicious")), "pytorch_model.bin", "refusing global posix.system", "nothing in the file was run");
        assertError(() -> Checkpoint.loadFrozen(fixture("torch/malicious")), "refusing global posix.system");
        assertFalse(Files.exists(marker), "the pickle's command ran");
        // and builtins.eval, by a pickle made here: cbuiltins\neval\n(S'...'\ntR.
        byte[] eval = "\u0080\u0002cbuiltins\neval\nX\u0004\u0000\u0000\u00001+1;\u0085R.".getBytes(StandardCharsets.ISO_8859_1);
        assertError(() -> readArchive(zip("m/data.pkl", eval, false)), "refusing global builtins.eval");
    }

    @Test void legacyCompressedTruncatedAndMissingShardsAreClearErrors(@TempDir Path tmp) throws IOException {
        assertError(() -> Checkpoint.load(fixture("torch/legacy")), "legacy format", "_use_new_zipfile_serialization=False",
                "torch.save(torch.load(f, map_location=\"cpu\"), f)");
        assertError(() -> readArchive(zip("m/data.pkl", new byte[] {(byte) 0x80, 2, '}', '.'}, true)), "m/data.pkl is compressed");

        Path cut = copy(fixture("torch/tied"), tmp.resolve("cut"));
        byte[] whole = Files.readAllBytes(cut.resolve("pytorch_model.bin"));
        Files.write(cut.resolve("pytorch_model.bin"), Arrays.copyOf(whole, whole.length / 2));
        assertError(() -> Checkpoint.load(cut), "pytorch_model.bin", "truncated");

        Path shards = copy(fixture("torch/untied-sharded"), tmp.resolve("shards"));
        Files.delete(shards.resolve("pytorch_model-00002-of-00003.bin"));
        assertError(() -> Checkpoint.load(shards), "names shard pytorch_model-00002-of-00003.bin", "is missing");
        Path index = shards.resolve("pytorch_model.bin.index.json");
        Files.writeString(index, "{\"weight_map\": {\"transformer.wte.weight\": \"../cut/pytorch_model.bin\"}}");
        assertError(() -> Checkpoint.load(shards), "shard '../cut/pytorch_model.bin'", "is not a file in");

        Path none = Files.createDirectories(tmp.resolve("none"));
        Files.copy(fixture("gpt-tiny").resolve("config.json"), none.resolve("config.json"));
        assertError(() -> Checkpoint.load(none), "no weights: looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin and pytorch_model.bin.index.json");
    }

    @Test void safetensorsIsPreferredWhenADirectoryHasBoth(@TempDir Path tmp) throws IOException {
        Path both = copy(fixture("gpt-tiny"), tmp.resolve("both"));
        Files.copy(fixture("torch/malicious").resolve("pytorch_model.bin"), both.resolve("pytorch_model.bin"));
        Checkpoint.load(both); // the pickle is never opened
    }

    @Test void convertWritesSafetensorsThatLoadBack(@TempDir Path tmp) throws IOException {
        Path src = copy(fixture("torch/tied"), tmp.resolve("src"));
        Files.writeString(src.resolve("generation_config.json"), "{\"do_sample\": false}\n");
        Files.copy(Path.of("data/gpt2-tokenizer/vocab.json"), src.resolve("vocab.json"));
        Gpt twin = Checkpoint.load(fixture("gpt-tiny"));
        for (String[] c : new String[][] {{"fp32", "5GB"}, {"bf16", "5GB"}, {"fp16", "100KB"}}) {
            Path out = tmp.resolve("out-" + c[0]);
            assertEquals(0, wafer("convert", "--model", src.toString(), "--out", out.toString(), "--dtype", c[0], "--max-shard-size", c[1]));
            UnaryOperator<float[]> round = c[0].equals("fp32") ? SAME : c[0].equals("bf16") ? BF16 : F16;
            Gpt back = Checkpoint.load(out);
            for (Parameter p : twin.parameters()) assertArrayEquals(round.apply(p.data), back.parameter(p.name).data, c[0] + " " + p.name);
            try (SafeTensors.Reader r = SafeTensors.open(out)) {
                // the names GPT2LMHeadModel writes: prefixed, lm_head left out when tied, no mask buffers
                assertEquals(twin.parameters().size(), r.names().size());
                assertTrue(r.names().stream().allMatch(n -> n.startsWith("transformer.")), r.names().toString());
                assertEquals(Map.of("fp32", SafeTensors.DType.F32, "bf16", SafeTensors.DType.BF16, "fp16", SafeTensors.DType.F16).get(c[0]),
                        r.info("transformer.wte.weight").dtype());
            }
            assertEquals(c[1].equals("100KB"), Files.exists(out.resolve(SafeTensors.INDEX_FILE)), c[0] + " sharded");
            assertTrue(Files.readString(out.resolve("config.json")).contains("\"torch_dtype\" : \""
                    + Map.of("fp32", "float32", "bf16", "bfloat16", "fp16", "float16").get(c[0]) + "\""));
            assertEquals(Files.readString(src.resolve("vocab.json")), Files.readString(out.resolve("vocab.json")));
            assertEquals(Files.readString(src.resolve("generation_config.json")), Files.readString(out.resolve("generation_config.json")));
        }
        StringWriter err = new StringWriter();
        CommandLine cl = Wafer.commandLine();
        cl.setErr(new PrintWriter(err, true));
        assertEquals(2, cl.execute("convert", "--model", src.toString(), "--out", src.toString()));
        assertTrue(err.toString().contains("is the model directory itself"), err.toString());
        assertEquals(2, cl.execute("convert", "--model", src.toString(), "--out", tmp.resolve("out-fp32").toString()));
        assertTrue(err.toString().contains("exists and is not empty (--overwrite writes into it)"), err.toString());
        assertEquals(0, cl.execute("convert", "--model", src.toString(), "--out", tmp.resolve("out-fp32").toString(), "--overwrite"));
    }

    static int wafer(String... args) { return Wafer.commandLine().execute(args); }

    /** Opens a one-entry archive, as a .bin file. */
    private static void readArchive(byte[] zip) {
        try {
            Path f = Files.createTempFile("wafer-torch", ".bin");
            try {
                Files.write(f, zip);
                TorchCheckpoint.open(f, false).close();
            } finally {
                Files.delete(f);
            }
        } catch (IOException e) {
            throw new WaferException(e.getMessage());
        }
    }

    private static byte[] zip(String name, byte[] data, boolean deflate) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bytes)) {
            ZipEntry e = new ZipEntry(name);
            if (!deflate) {
                CRC32 crc = new CRC32();
                crc.update(data);
                e.setMethod(ZipEntry.STORED);
                e.setSize(data.length);
                e.setCrc(crc.getValue());
            }
            z.putNextEntry(e);
            z.write(data);
            z.closeEntry();
        }
        return bytes.toByteArray();
    }

    static Path copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : files.toList()) if (Files.isRegularFile(f)) Files.copy(f, to.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        return to;
    }
}
