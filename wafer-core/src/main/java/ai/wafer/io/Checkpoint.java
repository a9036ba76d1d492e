package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.tensor.Parallel;
import ai.wafer.tensor.Int8Weights;
import ai.wafer.tensor.Weights;
import ai.wafer.tokenizer.TokenizerFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * A model in Hugging Face's directory form: {@code config.json} plus {@code model.safetensors}
 * (or shards with {@code model.safetensors.index.json}), or PyTorch's {@code pytorch_model.bin} (or shards with
 * {@code pytorch_model.bin.index.json}) as the Cerebras-GPT hub repositories ship. Tensor names are accepted with or without
 * the {@code transformer.} prefix; the attention-mask buffers of older GPT-2 files are skipped;
 * {@code lm_head.weight} is read only when embeddings are untied. Saving writes the names
 * GPT2LMHeadModel writes, so Hugging Face's loaders read what Wafer saved.
 */
public final class Checkpoint {
    private Checkpoint() {}

    public static final String PREFIX = "transformer.";
    private static final String GENERATION_CONFIG = "generation_config.json";
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Buffers, not parameters: the causal mask (and its fill value) that older GPT-2 files carry. */
    private static final Pattern MASK_BUFFER = Pattern.compile("h\\.\\d+\\.attn\\.(bias|masked_bias)");

    public static Gpt load(Path dir) {
        if (!Files.isDirectory(dir)) throw new WaferException(dir + ": not a model directory");
        GptConfig cfg = GptConfig.read(dir.resolve("config.json"));
        try (TensorReader r = weights(dir, false)) {
            checkDimensions(cfg, r, dir.toString());
            cfg.requireHeap(dir.toString());
            Gpt model = new Gpt(cfg);
            load(model, r, dir, Map.of());
            return model;
        }
    }

    /**
     * Loads {@code dir} for fine-tuning over a frozen base: every matrix (wte, wpe, the four Conv1D weights of each
     * block, an untied lm_head) stored contiguously as float32, float16 or bfloat16 stays a read-only mapping of the
     * file, used in its own dtype (no widened copy), so it costs no heap, and every process that maps the same file
     * shares one copy in the page cache; so do int8 matrices with their scales ({@link #int8}); vectors (biases,
     * LayerNorm gains) and tensors stored otherwise are read onto the heap. Every parameter starts frozen. A parameter made trainable later is
     * copied to the heap then ({@link Parameter#setTrainable}).
     */
    public static Gpt loadFrozen(Path dir) {
        if (!Files.isDirectory(dir)) throw new WaferException(dir + ": not a model directory");
        GptConfig cfg = GptConfig.read(dir.resolve("config.json"));
        Map<String, Weights> mapped = new LinkedHashMap<>();
        try (TensorReader r = weights(dir, true)) {
            checkDimensions(cfg, r, dir.toString());
            Map<String, Int8Weights> int8 = int8(r, dir);
            for (String name : r.names()) {
                String canon = canonical(name);
                if (r.info(name).shape().length != 2 || mapped.containsKey(canon) || int8.containsKey(scaled(canon))) continue;
                if (canon.equals("lm_head.weight") && cfg.tieWordEmbeddings()) continue;
                // the shape is checked against the config when the rest is loaded below
                Weights data = int8.containsKey(canon) ? int8.get(canon) : r.mapped(name); // null: not stored contiguously as F32, F16, BF16 or I8; read onto the heap below
                if (data != null) mapped.put(canon, data);
            }
            Gpt model = new Gpt(cfg, mapped);
            load(model, r, dir, Map.of());
            for (Parameter p : model.parameters()) p.setTrainable(false);
            return model;
        }
    }

    /**
     * Loads {@code dir}'s weights into {@code model} (built from the same config) plus, where the file has them,
     * the tensors named in {@code heads} (a fine-tuned head: {@code classifier.weight}, {@code score.weight}, stored
     * without the transformer. prefix as GPT2For*Classification stores them). Returns the head names it read;
     * any other tensor the model lacks is still an error.
     */
    public static Set<String> load(Gpt model, Path dir, Map<String, Parameter> heads) {
        if (!Files.isDirectory(dir)) throw new WaferException(dir + ": not a model directory");
        try (TensorReader r = weights(dir, false)) {
            return load(model, r, dir, heads);
        }
    }

    /** Opens {@code dir}'s weights, in whichever of Hugging Face's forms they are. */
    private static TensorReader weights(Path dir, boolean keepMapped) {
        // hub repositories often carry both forms of the same weights: safetensors then, as transformers prefers it
        // too, and it is the one that needs no unpickling
        if (Files.isRegularFile(dir.resolve(SafeTensors.SINGLE_FILE)) || Files.isRegularFile(dir.resolve(SafeTensors.INDEX_FILE)))
            return SafeTensors.open(dir, keepMapped);
        if (Files.isRegularFile(dir.resolve(TorchCheckpoint.SINGLE_FILE)) || Files.isRegularFile(dir.resolve(TorchCheckpoint.INDEX_FILE)))
            return TorchCheckpoint.open(dir, keepMapped);
        throw new WaferException(dir + ": no weights: looked for " + SafeTensors.SINGLE_FILE + ", " + SafeTensors.INDEX_FILE + ", "
                + TorchCheckpoint.SINGLE_FILE + " and " + TorchCheckpoint.INDEX_FILE);
    }

    /**
     * Fills every parameter of {@code model} from {@code r}; any missing, extra or misshapen tensor is an error naming it.
     * An int8 matrix that is not already mapped is dequantized onto the heap, saying so.
     */
    private static Set<String> load(Gpt model, TensorReader r, Path dir, Map<String, Parameter> heads) {
        String where = dir.toString();
        Map<String, Int8Weights> int8 = int8(r, dir);
        Set<String> headsRead = new java.util.LinkedHashSet<>();
        Map<String, String> stored = new LinkedHashMap<>(); // canonical name -> name in the file
        List<String> extra = new ArrayList<>();
        for (String name : r.names()) {
            String canon = canonical(name);
            if (MASK_BUFFER.matcher(canon).matches()) continue;
            Parameter head = heads.get(name);
            if (head != null) {
                long[] have = r.info(name).shape(), want = Arrays.stream(head.shape).asLongStream().toArray();
                if (!Arrays.equals(have, want))
                    throw new WaferException(where + ": tensor " + name + " has shape " + Arrays.toString(have) + " but "
                            + Arrays.toString(want) + " is needed (a head for another number of labels?)");
                r.read(name, head.data, head.off);
                headsRead.add(name);
                continue;
            }
            if (canon.equals("lm_head.weight") && model.config.tieWordEmbeddings()) continue; // tied: wte is the head
            if (int8.containsKey(scaled(canon))) continue; // an int8 matrix's scales, read with it
            if (!model.hasParameter(canon)) { extra.add(name); continue; }
            if (stored.put(canon, name) != null) throw new WaferException(where + ": tensor " + canon + " is stored twice");
        }
        if (!extra.isEmpty()) throw new WaferException(where + ": tensors that a " + shape(model.config) + " model does not have: " + extra);
        List<String> missing = new ArrayList<>();
        for (Parameter p : model.parameters()) if (!stored.containsKey(p.name)) missing.add(p.name);
        if (!missing.isEmpty()) throw new WaferException(where + ": missing tensors " + missing);
        boolean dequantized = false;
        for (Parameter p : model.parameters()) {
            String name = stored.get(p.name);
            long[] have = r.info(name).shape(), want = Arrays.stream(p.shape).asLongStream().toArray();
            if (!Arrays.equals(have, want))
                throw new WaferException(where + ": tensor " + name + " has shape " + Arrays.toString(have)
                        + " but the config needs " + Arrays.toString(want));
            if (p.isMapped()) continue; // a mapped one already is the file's data
            Int8Weights q = int8.get(p.name);
            if (q == null) r.read(name, p.data, p.off);
            else {
                if (!dequantized) System.err.println("wafer: " + where + " stores its matrices int8; dequantized to float32 on the heap for this use");
                dequantized = true;
                q.read(0, p.data, p.off, p.size());
            }
        }
        return headsRead;
    }

    /** The suffix of an int8 matrix's scale tensor: {@code transformer.h.0.attn.c_attn.weight.scale}. */
    public static final String SCALE = ".scale";
    /** config.json's {@code quantization_config.quant_method} for Wafer's int8 files. */
    public static final String INT8_METHOD = "wafer_int8";

    /** The matrix whose scales {@code name} would be (null when it is no scale tensor's name). */
    private static String scaled(String name) { return name.endsWith(SCALE) ? name.substring(0, name.length() - SCALE.length()) : null; }

    /** An int8 matrix's scales are per output column (a Conv1D weight [in, out]) except for wte and lm_head ([V, C], per row). */
    public static boolean int8PerColumn(String canonicalName) { return !canonicalName.equals("wte.weight") && !canonicalName.equals("lm_head.weight"); }

    /**
     * The int8 group size that {@code dir}'s config.json declares ({@code quantization_config}: quant_method
     * {@value #INT8_METHOD}, bits 8, group_size), or -1 when it declares none; any other scheme is an error naming the key.
     */
    public static int int8GroupSize(Path dir) {
        Path cfgFile = dir.resolve("config.json");
        JsonNode qc = null;
        try {
            if (Files.isRegularFile(cfgFile)) qc = JSON.readTree(cfgFile.toFile()).get("quantization_config");
        } catch (IOException e) {
            throw new WaferException(cfgFile + ": cannot read: " + e.getMessage(), e);
        }
        if (qc == null || qc.isNull()) return -1;
        String where = cfgFile + ": quantization_config ";
        if (!qc.isObject()) throw new WaferException(where + "is not an object: " + qc);
        for (var f : qc.properties())
            if (!Set.of("quant_method", "bits", "group_size").contains(f.getKey())) throw new WaferException(where + "has key " + f.getKey() + ", which Wafer does not know");
        if (!INT8_METHOD.equals(qc.path("quant_method").asText()))
            throw new WaferException(where + "quant_method " + qc.get("quant_method") + " is not Wafer's int8 (" + INT8_METHOD + ")");
        if (!qc.path("bits").isIntegralNumber() || qc.get("bits").asInt() != 8) throw new WaferException(where + "bits " + qc.get("bits") + " is not 8");
        JsonNode gn = qc.path("group_size");
        if (!gn.isIntegralNumber() || !Int8Weights.validGroup(gn.asInt()))
            throw new WaferException(where + "group_size " + gn + " is not 0 (a scale per output channel) or a positive multiple of 16");
        return gn.asInt();
    }

    /**
     * The int8 matrices of {@code dir}'s weights, by canonical name, in place in the reader's mapping: every I8 tensor
     * with its F32 {@code <name>.scale} tensor, as config.json's {@code quantization_config} ({@value #INT8_METHOD}, bits
     * 8, group_size) describes them. Empty for a file with neither; anything unknown or inconsistent is an error naming
     * the key or tensor and the file.
     */
    private static Map<String, Int8Weights> int8(TensorReader r, Path dir) {
        Path cfgFile = dir.resolve("config.json");
        int group = int8GroupSize(dir);
        Map<String, Int8Weights> out = new LinkedHashMap<>();
        List<String> i8 = r.names().stream().filter(n -> r.info(n).dtype() == SafeTensors.DType.I8).toList();
        if (group < 0) {
            if (!i8.isEmpty()) throw new WaferException(cfgFile + " has no quantization_config, but tensor " + i8.getFirst() + " is stored I8");
            return out;
        }
        if (i8.isEmpty()) throw new WaferException(cfgFile + ": quantization_config says int8, but no tensor of the weights is stored I8");
        for (String name : r.names()) {
            String base = scaled(name), file = r instanceof SafeTensors.Reader s ? s.file(name).toString() : dir.toString();
            if (base != null && !i8.contains(base)) throw new WaferException(file + ": tensor " + name + " is a scale tensor, but " + base + " is not an I8 tensor");
            if (!i8.contains(name)) continue;
            long[] shape = r.info(name).shape();
            String canon = canonical(name);
            if (shape.length != 2 || canon.equals("wpe.weight")) throw new WaferException(file + ": tensor " + name + " is I8; only the matrices but wpe may be");
            if (!r.names().contains(name + SCALE)) throw new WaferException(file + ": I8 tensor " + name + " has no scale tensor " + name + SCALE);
            var si = r.info(name + SCALE);
            boolean perColumn = int8PerColumn(canon);
            long in = perColumn ? shape[0] : shape[1], groups = group == 0 || in == 0 ? 1 : (in + group - 1) / group;
            long[] want = perColumn ? new long[] {groups, shape[1]} : new long[] {shape[0], groups};
            if (si.dtype() != SafeTensors.DType.F32 || !Arrays.equals(si.shape(), want))
                throw new WaferException(file + ": tensor " + name + SCALE + " is " + si.dtype() + Arrays.toString(si.shape()) + "; " + name + " " + Arrays.toString(shape)
                        + " in groups of " + group + " needs F32" + Arrays.toString(want));
            java.lang.foreign.MemorySegment q = r.contiguous(name), sc = r.contiguous(name + SCALE);
            if (q == null || sc == null) throw new WaferException(file + ": int8 tensor " + name + " or its scales are not stored contiguously");
            out.put(canon, new Int8Weights(q.asReadOnly(), sc.asReadOnly(), (int) shape[0], (int) shape[1], perColumn, group));
        }
        return out;
    }

    /**
     * The config's dimensions against the file, before the model is allocated, so that a config that disagrees
     * with its weights (huge dimensions, too many layers) is one clear error rather than a failed allocation.
     */
    private static void checkDimensions(GptConfig c, TensorReader r, String where) {
        Map<String, long[]> want = Map.of("wte.weight", new long[]{c.vocabSize(), c.nEmbd()}, "wpe.weight", new long[]{c.nPositions(), c.nEmbd()},
                "h." + (c.nLayer() - 1) + ".mlp.c_fc.weight", new long[]{c.nEmbd(), c.nInner()});
        Set<String> seen = new java.util.HashSet<>();
        for (String name : r.names()) {
            long[] w = want.get(canonical(name)), have = r.info(name).shape();
            if (w != null && !Arrays.equals(w, have))
                throw new WaferException(where + ": tensor " + name + " has shape " + Arrays.toString(have) + " but config.json needs "
                        + Arrays.toString(w) + " (vocab_size, n_positions, n_embd, n_inner)");
            if (w != null) seen.add(canonical(name));
        }
        for (String n : want.keySet())
            if (!seen.contains(n)) throw new WaferException(where + ": no tensor " + n + ", which config.json (n_layer " + c.nLayer() + ") needs");
    }

    static String canonical(String name) { return name.startsWith(PREFIX) ? name.substring(PREFIX.length()) : name; }

    private static String shape(GptConfig c) {
        return c.nLayer() + "-layer, n_embd " + c.nEmbd() + (c.tieWordEmbeddings() ? "" : ", untied");
    }

    /**
     * Writes config.json and the weights (F32, BF16 or F16; I8: the int8 matrices as stored, each with its
     * {@value #SCALE} tensor, the rest F32) as GPT2LMHeadModel names them; shards above {@code maxShardBytes} (0 = one file).
     */
    public static void save(Gpt model, Path dir, SafeTensors.DType dtype, long maxShardBytes) {
        save(model, model.config, Map.of(), dir, dtype, 0, maxShardBytes);
    }

    /**
     * Saves with {@code config} as config.json (the model's shape, plus e.g. a task's architectures and labels) and
     * a fine-tuned head's tensors under their own names, as GPT2For*Classification saves them.
     */
    public static void save(Gpt model, GptConfig config, Map<String, Parameter> heads, Path dir) {
        save(model, config, heads, dir, SafeTensors.DType.F32, 0, 0);
    }

    private static void save(Gpt model, GptConfig config, Map<String, Parameter> heads, Path dir, SafeTensors.DType dtype, int group, long maxShardBytes) {
        try {
            Files.createDirectories(dir);
            config.write(dir.resolve("config.json"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + dir.resolve("config.json") + ": " + e.getMessage(), e);
        }
        Map<String, SafeTensors.Tensor> out = new LinkedHashMap<>();
        for (Parameter p : model.parameters()) {
            String name = p.name.equals("lm_head.weight") ? p.name : PREFIX + p.name;
            long[] shape = Arrays.stream(p.shape).asLongStream().toArray();
            if (dtype == SafeTensors.DType.I8 && p.weights() instanceof Int8Weights q) {
                out.put(name, new SafeTensors.Tensor(shape, q.quantized(), SafeTensors.DType.I8));
                out.put(name + SCALE, new SafeTensors.Tensor(q.scaleShape(), q.scales()));
            } else if (dtype == SafeTensors.DType.I8 && p.shape.length == 2 && p != model.wpe) {
                // quantized when the writer reaches it (the matrix, then its scales, adjacent in name order) and dropped
                // after: a model larger than memory converts one matrix at a time
                boolean perColumn = int8PerColumn(p.name);
                Int8Weights[] last = new Int8Weights[1];
                Supplier<Int8Weights> q = () -> {
                    if (last[0] != null) return last[0];
                    last[0] = Int8Weights.of(p.weights(), p.shape[0], p.shape[1], perColumn, group);
                    if (p.weights().mapping() != null) p.weights().mapping().unload(); // read: out of this process's memory
                    return last[0];
                };
                out.put(name, SafeTensors.Tensor.lazy(shape, SafeTensors.DType.I8, () -> q.get().quantized()));
                out.put(name + SCALE, SafeTensors.Tensor.lazy(Int8Weights.scaleShape(p.shape[0], p.shape[1], perColumn, group), SafeTensors.DType.F32, () -> {
                    MemorySegment sc = q.get().scales();
                    last[0] = null;
                    return sc;
                }));
            } else out.put(name, tensor(p));
        }
        heads.forEach((name, p) -> out.put(name, tensor(p)));
        if (dtype == SafeTensors.DType.I8) dtype = SafeTensors.DType.F32; // what is not int8
        // writeSharded removes stale files itself once the new ones are in place; after a single-file
        // write, an old index would be ambiguous on the next load, so it goes only then
        if (maxShardBytes > 0) SafeTensors.writeSharded(dir, out, dtype, maxShardBytes);
        else {
            SafeTensors.write(dir.resolve(SafeTensors.SINGLE_FILE), out, dtype);
            try { Files.deleteIfExists(dir.resolve(SafeTensors.INDEX_FILE)); } catch (IOException e) { throw new UncheckedIOException(e); }
        }
    }

    public static void save(Gpt model, Path dir) { save(model, dir, SafeTensors.DType.F32, 0); }

    /**
     * Writes a model of {@code cfg}'s shape initialised as {@link Gpt#init} would (the std of each tensor from
     * {@link GptConfig#initStd}), for shapes whose float32 values do not fit in memory: Cerebras-GPT 6.7B and 13B
     * written to disk to try them on a small machine. The normal draws of each std fill one buffer the size of the
     * largest matrix (plus 2^20), and each matrix is a window of it at its own random offset: layers hold different
     * (shifted) values while only a buffer or two is ever in memory. Random enough to measure speed and memory with,
     * not an independent draw per weight. The weights stream from those buffers to the file, in {@code dtype}.
     */
    public static void writeRandom(GptConfig cfg, long seed, Path dir, SafeTensors.DType dtype, long maxShardBytes) {
        int slack = 1 << 20, C = cfg.nEmbd();
        long largest = (long) C * Math.max(Math.max(cfg.vocabSize(), cfg.nPositions()), Math.max(3 * C, cfg.nInner()));
        if (largest + slack > Integer.MAX_VALUE - 8) throw new WaferException("a matrix of " + largest + " values is beyond one Java array");
        SplittableRandom root = new SplittableRandom(seed);
        Map<Float, float[]> pools = new HashMap<>();
        Gpt m = new Gpt(cfg, (name, shape) -> {
            float std = cfg.initStd(name);
            if (std == 0) return null;
            float[] pool = pools.computeIfAbsent(std, sd -> normals(root.split(), (int) largest + slack, sd));
            return Weights.of(MemorySegment.ofArray(pool).asSlice(4L * root.nextInt(slack), 4L * shape[0] * shape[1]));
        });
        for (Parameter p : m.parameters())
            if (!p.isMapped()) Arrays.fill(p.data, p.off, p.off + p.size(), GptConfig.initConstant(p.name));
        save(m, dir, dtype, maxShardBytes);
    }

    /** n normal draws times std, in parallel, each chunk from its own stream split in order (the same for any thread count). */
    private static float[] normals(SplittableRandom r, int n, float std) {
        int chunk = 1 << 20, chunks = (n + chunk - 1) / chunk;
        SplittableRandom[] streams = new SplittableRandom[chunks];
        for (int c = 0; c < chunks; c++) streams[c] = r.split();
        float[] a = new float[n];
        Parallel.forRange(chunks, (t, from, to) -> {
            for (int c = from; c < to; c++)
                for (int i = c * chunk, end = Math.min(n, i + chunk); i < end; i++) a[i] = (float) (streams[c].nextGaussian() * std);
        });
        return a;
    }

    /**
     * Rewrites the model directory {@code from} (safetensors or PyTorch {@code .bin}, sharded or not) as Hugging Face
     * safetensors in {@code to}: the weights in {@code dtype} (F32, BF16 or F16, rounded to nearest even; I8: the
     * matrices but wpe quantized to int8 with scales per output channel and {@code group} inputs, see
     * {@link Int8Weights}, the rest F32), in shards of at most {@code maxShardBytes} with an index when they do not fit
     * in one (0 = one file); {@code from}'s config.json with its {@code torch_dtype} set to what was written (and, for
     * I8, a {@code quantization_config}), its tokenizer files and generation_config.json. An int8 source is written
     * as stored when its group size is {@code group}, dequantized (saying so) for F32, BF16 or F16, and refused for
     * another group size. {@code to} must not be {@code from}, nor a non-empty directory unless {@code overwrite}. The
     * source is loaded as a frozen base, so its float32 matrices stream from the mapped file to the new one without the heap.
     */
    public static void convert(Path from, Path to, SafeTensors.DType dtype, int group, long maxShardBytes, boolean overwrite) {
        if (!Files.isDirectory(from)) throw new WaferException(from + ": not a model directory");
        try {
            if (Files.exists(to)) {
                if (Files.isSameFile(from, to)) throw new WaferException(to + " is the model directory itself; write the converted model elsewhere");
                if (!Files.isDirectory(to)) throw new WaferException(to + ": exists and is not a directory");
                try (var files = Files.list(to)) {
                    if (!overwrite && files.findAny().isPresent()) throw new WaferException(to + ": exists and is not empty (--overwrite writes into it)");
                }
            }
            if (dtype != SafeTensors.DType.I8 && group != 0) throw new WaferException("--group-size " + group + " is for --dtype int8 only");
            if (!Int8Weights.validGroup(group)) throw new WaferException("--group-size " + group + " must be 0 (a scale per output channel) or a positive multiple of 16 (32, 64, 128)");
            Gpt model = loadFrozen(from);
            for (Parameter p : model.parameters()) {
                if (!(p.weights() instanceof Int8Weights q)) continue;
                if (dtype != SafeTensors.DType.I8) {
                    System.err.println("wafer convert: " + from + " stores its matrices int8; written dequantized");
                    break;
                }
                if (q.groupSize() != group)
                    throw new WaferException(from + " is int8 with group size " + q.groupSize() + ", not " + group + "; convert from the float model to regroup (requantizing adds error)");
            }
            save(model, model.config, Map.of(), to, dtype, group, maxShardBytes);
            ObjectNode config = (ObjectNode) JSON.readTree(from.resolve("config.json").toFile());
            config.put("torch_dtype", switch (dtype) {
                case F32, I8 -> "float32";
                case BF16 -> "bfloat16";
                case F16 -> "float16";
                default -> throw new IllegalArgumentException("can write F32, BF16, F16 or I8, not " + dtype);
            });
            config.remove("quantization_config");
            if (dtype == SafeTensors.DType.I8) config.putObject("quantization_config").put("quant_method", INT8_METHOD).put("bits", 8).put("group_size", group);
            Files.writeString(to.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config) + "\n");
            TokenizerFiles.copy(from, to);
            if (Files.isRegularFile(from.resolve(GENERATION_CONFIG)))
                Files.copy(from.resolve(GENERATION_CONFIG), to.resolve(GENERATION_CONFIG), StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("converting " + from + " to " + to + ": " + e.getMessage(), e);
        }
    }

    /** A parameter's values as a tensor to write (no copy). */
    public static SafeTensors.Tensor tensor(Parameter p) {
        return new SafeTensors.Tensor(Arrays.stream(p.shape).asLongStream().toArray(), p.values());
    }
}
