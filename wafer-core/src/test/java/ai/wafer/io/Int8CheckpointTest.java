package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.generate.InferenceModel;
import ai.wafer.generate.WeightType;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.KvCache;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Activation;
import ai.wafer.tensor.Int8Weights;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code wafer convert --dtype int8} files: I8 matrices with F32 {@code .scale} tensors and a quantization_config, loaded
 * as read-only mappings (no heap copy) that compute exactly what quantizing the float file at load computes.
 */
class Int8CheckpointTest {
    /** n_embd 48 (not a multiple of 32: a partial last group), untied head, odd vocabulary. */
    private static final GptConfig CFG = new GptConfig(37, 16, 48, 2, 2, 112, Activation.GELU, 1e-5f, true, false, 0.02f, Map.of());

    @Test
    void convertedFileComputesWhatQuantizingAtLoadComputes(@TempDir Path dir) throws Exception {
        Path fp32 = dir.resolve("fp32");
        Checkpoint.save(Gpt.init(CFG, 4), fp32);
        for (int g : new int[] {0, 32, 64}) {
            Path int8 = dir.resolve("int8-" + g);
            Checkpoint.convert(fp32, int8, SafeTensors.DType.I8, g, 0, false);
            var qc = new ObjectMapper().readTree(int8.resolve("config.json").toFile()).get("quantization_config");
            assertEquals(Checkpoint.INT8_METHOD, qc.get("quant_method").asText());
            assertEquals(g, qc.get("group_size").asInt());
            try (SafeTensors.Reader r = SafeTensors.open(int8)) {
                assertEquals(SafeTensors.DType.I8, r.info("transformer.h.1.mlp.c_fc.weight").dtype());
                assertEquals(SafeTensors.DType.F32, r.info("transformer.wpe.weight").dtype());
                assertEquals(SafeTensors.DType.F32, r.info("lm_head.weight.scale").dtype());
            }
            Gpt loaded = Checkpoint.loadFrozen(int8);
            int matrices = 0;
            for (Parameter p : loaded.parameters()) {
                if (!(p.weights() instanceof Int8Weights q)) continue;
                matrices++;
                assertTrue(q.mapped(), p.name + " is a mapping of the file");
                assertNull(p.data, p.name + " has no heap array");
                assertEquals(g, q.groupSize());
            }
            assertEquals(4 * CFG.nLayer() + 2, matrices, "every matrix but wpe is int8");
            InferenceModel fromFile = new InferenceModel(loaded, WeightType.parse("int8", g));
            InferenceModel atLoad = new InferenceModel(Checkpoint.loadFrozen(fp32), WeightType.parse("int8", g));
            assertArrayEquals(logits(atLoad), logits(fromFile), "group " + g);
            // a heap load (full fine-tuning, pretraining init) and an explicit fp32 get the dequantized values
            Gpt heap = Checkpoint.load(int8), fp = Checkpoint.loadFrozen(int8);
            WeightType.F32.apply(fp);
            for (Parameter p : loaded.parameters()) {
                assertArrayEquals(p.array(), heap.parameter(p.name).array(), p.name);
                assertTrue(fp.parameter(p.name).weights() instanceof ai.wafer.tensor.F32Weights || !(p.weights() instanceof Int8Weights), p.name);
                assertArrayEquals(p.array(), fp.parameter(p.name).array(), p.name);
            }
            // no --dtype: int8 as stored for this file, fp32 for the float one
            assertEquals(new WeightType(WeightType.Kind.INT8, 0), WeightType.parse(null, 0, int8));
            assertEquals(WeightType.F32, WeightType.parse(null, 0, fp32));
        }
        assertThrows(WaferException.class, () -> Checkpoint.convert(dir.resolve("int8-32"), dir.resolve("regrouped"), SafeTensors.DType.I8, 64, 0, false));
    }

    /** Prefill (the GEMM) and one decode step (the decode kernel) of a fixed prompt. */
    private static float[] logits(InferenceModel m) {
        int[] p = {3, 1, 4, 1, 5, 9, 2, 6};
        float[] a = new float[CFG.vocabSize()], b = new float[CFG.vocabSize()];
        KvCache c = m.newCache(16);
        m.prefill(c, p, 0, p.length - 1, a);
        m.decode(new KvCache[] {c}, new int[] {p[p.length - 1]}, 1, b);
        float[] both = java.util.Arrays.copyOf(a, 2 * a.length);
        System.arraycopy(b, 0, both, a.length, b.length);
        return both;
    }

    /** Mapped int8 weights add no heap of their size: 7 MB of int8 matrices load in well under that. */
    @Test
    void loadingAnInt8FileAddsNoHeapOfTheWeightsSize(@TempDir Path dir) {
        GptConfig big = new GptConfig(4096, 16, 256, 8, 4, 1024, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
        Checkpoint.save(Gpt.init(big, 1), dir.resolve("fp32"));
        Checkpoint.convert(dir.resolve("fp32"), dir.resolve("int8"), SafeTensors.DType.I8, 128, 0, false);
        long before = usedHeap();
        Gpt m = Checkpoint.loadFrozen(dir.resolve("int8"));
        long grew = usedHeap() - before, weights = 0;
        for (Parameter p : m.parameters()) if (p.weights() instanceof Int8Weights q && q.mapped()) weights += q.size();
        assertTrue(weights > 7_000_000, "int8 bytes " + weights);
        assertTrue(grew < weights / 4, "loading grew the heap by " + grew + " bytes for " + weights + " bytes of int8 weights");
    }

    private static long usedHeap() {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) System.gc();
        return rt.totalMemory() - rt.freeMemory();
    }

    @Test
    void inconsistentFilesAreRefusedByName(@TempDir Path dir) throws Exception {
        Path fp32 = dir.resolve("fp32"), int8 = dir.resolve("int8");
        Checkpoint.save(Gpt.init(CFG, 2), fp32);
        Checkpoint.convert(fp32, int8, SafeTensors.DType.I8, 32, 0, false);
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(int8.resolve("config.json").toFile());
        for (var bad : Map.of("bits", "4", "group_size", "20", "quant_method", "\"gptq\"", "zero_point", "true").entrySet()) {
            ObjectNode c = cfg.deepCopy();
            ((ObjectNode) c.get("quantization_config")).set(bad.getKey(), json.readTree(bad.getValue()));
            Files.writeString(int8.resolve("config.json"), c.toString());
            var e = assertThrows(WaferException.class, () -> Checkpoint.loadFrozen(int8), bad.getKey());
            assertTrue(e.getMessage().contains("quantization_config") && e.getMessage().contains(bad.getKey()), e.getMessage());
        }
        ObjectNode none = cfg.deepCopy();
        none.remove("quantization_config");
        Files.writeString(int8.resolve("config.json"), none.toString());
        assertTrue(assertThrows(WaferException.class, () -> Checkpoint.load(int8)).getMessage().contains("is stored I8"));
        // a group size the scales' shape does not fit
        ObjectNode other = cfg.deepCopy();
        ((ObjectNode) other.get("quantization_config")).put("group_size", 16);
        Files.writeString(int8.resolve("config.json"), other.toString());
        var e = assertThrows(WaferException.class, () -> Checkpoint.loadFrozen(int8));
        assertTrue(e.getMessage().contains(".scale") && e.getMessage().contains("model.safetensors"), e.getMessage());
        // an fp32 file that claims int8
        Files.writeString(fp32.resolve("config.json"), cfg.toString());
        assertTrue(assertThrows(WaferException.class, () -> Checkpoint.loadFrozen(fp32)).getMessage().contains("no tensor of the weights is stored I8"));
    }
}
