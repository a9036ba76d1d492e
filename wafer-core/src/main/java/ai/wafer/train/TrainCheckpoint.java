package ai.wafer.train;

import ai.wafer.WaferException;
import ai.wafer.data.TokenLoader;
import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Everything a training run needs to continue exactly where it stopped, in one directory:
 * the model as a Hugging Face checkpoint, the AdamW moments ({@code optimizer.safetensors}, keys
 * {@code m.NAME} and {@code v.NAME}), and {@code state.json} (step, data position, batch shape).
 * Fine-tuning's checkpoints ({@code finetune.FinetuneCheckpoint}) are written and read by the same code, with the
 * trainable tensors in place of the model and their own state.json fields.
 * A directory is written under a temporary name and renamed, so a crash leaves either the old
 * checkpoint or the new one, never half of one.
 */
public final class TrainCheckpoint {
    private TrainCheckpoint() {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    public static final String DIR_PREFIX = "step-";

    /** What state.json holds besides the tensors. */
    public record State(int step, TokenLoader.State data, int batchSize, int seqLen, int gradAccum) {
        /** The state of a run at {@code step} with the global batch shape of {@code o}. */
        public State(int step, TokenLoader.State data, Pretrainer.Options o) { this(step, data, o.batchSize(), o.seqLen(), o.gradAccum()); }

        /** This state, if it was saved with the global batch shape of {@code o} (the data position means nothing otherwise). */
        public State requireShape(Path ckpt, Pretrainer.Options o) {
            if (batchSize != o.batchSize() || seqLen != o.seqLen() || gradAccum != o.gradAccum())
                throw new WaferException(ckpt + ": saved with global batch " + batchSize + " x " + seqLen + " x " + gradAccum
                        + " accumulation; resume needs the same (got " + o.batchSize() + " x " + o.seqLen() + " x " + o.gradAccum() + ")");
            return this;
        }
    }

    public static Path dirFor(Path runDir, int step) {
        return runDir.resolve("checkpoints").resolve(String.format("%s%06d", DIR_PREFIX, step));
    }

    public static Path save(Path runDir, Gpt model, AdamW opt, State st) {
        ObjectNode s = JSON.createObjectNode();
        s.set("data", JSON.valueToTree(st.data()));
        s.put("batch_size", st.batchSize());
        s.put("seq_len", st.seqLen());
        s.put("grad_accum", st.gradAccum());
        return write(runDir, st.step(), tmp -> Checkpoint.save(model, tmp), opt, s);
    }

    /**
     * The one checkpoint writer (pretraining's and fine-tuning's): {@code weights} writes the model's files into the
     * temporary directory, then come the AdamW moments and state.json (step, AdamW's step count and the fields of
     * {@code state}); the directory is renamed into place last.
     */
    public static Path write(Path runDir, int step, ai.wafer.io.AtomicFiles.Writer weights, AdamW opt, ObjectNode state) {
        Path dir = dirFor(runDir, step);
        Path tmp = dir.resolveSibling(dir.getFileName() + ".tmp");
        try {
            deleteTree(tmp);
            Files.createDirectories(tmp);
            weights.write(tmp);
            Map<String, SafeTensors.Tensor> moments = new LinkedHashMap<>();
            List<Parameter> ps = opt.parameters();
            for (int i = 0; i < ps.size(); i++) {
                long[] shape = Arrays.stream(ps.get(i).shape).asLongStream().toArray();
                moments.put("m." + ps.get(i).name, new SafeTensors.Tensor(shape, opt.firstMoments().get(i)));
                moments.put("v." + ps.get(i).name, new SafeTensors.Tensor(shape, opt.secondMoments().get(i)));
            }
            SafeTensors.write(tmp.resolve("optimizer.safetensors"), moments);
            ObjectNode s = JSON.createObjectNode();
            s.put("step", step);
            s.put("adamw_steps", opt.stepCount());
            s.setAll(state);
            Files.writeString(tmp.resolve("state.json"), JSON.writeValueAsString(s));
            deleteTree(dir);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + dir + ": " + e.getMessage(), e);
        }
    }

    /** A checkpoint directory, or a run directory whose latest checkpoint is taken. */
    public static Path resolve(Path dirOrRun) {
        if (Files.isRegularFile(dirOrRun.resolve("state.json"))) return dirOrRun;
        List<Path> all = saved(dirOrRun);
        if (!all.isEmpty()) return all.getLast();
        throw new WaferException(dirOrRun + ": not a training checkpoint (no state.json, and no checkpoints/step-*/ inside)");
    }

    /** The run's complete checkpoints (a state.json written last), oldest first by step number (not as text: step 1000000 follows 999999). */
    static List<Path> saved(Path runDir) {
        Path ck = runDir.resolve("checkpoints");
        if (!Files.isDirectory(ck)) return List.of();
        try (Stream<Path> s = Files.list(ck)) {
            return s.filter(p -> p.getFileName().toString().matches(DIR_PREFIX + "\\d+") && Files.isRegularFile(p.resolve("state.json")))
                    .sorted(java.util.Comparator.comparingLong(p -> Long.parseLong(p.getFileName().toString().substring(DIR_PREFIX.length()))))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Deletes all but the newest {@code keep} complete checkpoints of the run (keep < 1: none deleted). */
    public static void prune(Path runDir, int keep) {
        List<Path> all = saved(runDir);
        try {
            for (int i = 0; keep > 0 && i < all.size() - keep; i++) deleteTree(all.get(i));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove an old checkpoint of " + runDir + ": " + e.getMessage(), e);
        }
    }

    /** The model config stored in a (pretraining) checkpoint. */
    public static GptConfig config(Path ckpt) {
        if (!Files.isRegularFile(ckpt.resolve("config.json")))
            throw new WaferException(ckpt + ": no config.json, so not a pretraining checkpoint (a fine-tuning one resumes with wafer finetune)");
        return GptConfig.read(ckpt.resolve("config.json"));
    }

    /**
     * Restores parameters and moments into {@code model} and {@code opt} (which must have the
     * checkpoint's shape: a mismatch is an error naming both shapes) and returns the saved state.
     */
    public static State load(Path ckpt, Gpt model, AdamW opt) {
        GptConfig saved = config(ckpt);
        GptConfig have = model.config;
        if (saved.nLayer() != have.nLayer() || saved.nEmbd() != have.nEmbd() || saved.nHead() != have.nHead()
                || saved.vocabSize() != have.vocabSize() || saved.nPositions() != have.nPositions() || saved.nInner() != have.nInner())
            throw new WaferException(ckpt + ": the checkpoint holds a model of shape " + describe(saved)
                    + " but this run builds " + describe(have));
        if (!saved.mup().equals(have.mup()))
            throw new WaferException(ckpt + ": the checkpoint's model has " + saved.mup() + " but this run builds " + have.mup()
                    + " (resume with the run's --mup options, or with --resume alone)");
        Checkpoint.load(model, ckpt, Map.of());
        JsonNode s = restore(ckpt, opt);
        try {
            TokenLoader.State data = JSON.treeToValue(s.get("data"), TokenLoader.State.class);
            return new State(s.get("step").asInt(), data, s.get("batch_size").asInt(), s.get("seq_len").asInt(), s.get("grad_accum").asInt());
        } catch (IOException | NullPointerException e) {
            throw new WaferException(ckpt + "/state.json: unreadable or incomplete (" + e.getMessage() + ")");
        }
    }

    /** Restores the AdamW moments and step count of {@code opt} from a checkpoint {@link #write} made; returns its state.json. */
    public static JsonNode restore(Path ckpt, AdamW opt) {
        JsonNode s = state(ckpt);
        try (SafeTensors.Reader r = SafeTensors.open(ckpt.resolve("optimizer.safetensors"))) {
            List<Parameter> ps = opt.parameters();
            for (int i = 0; i < ps.size(); i++) {
                String n = ps.get(i).name;
                for (String k : new String[]{"m." + n, "v." + n})
                    if (!r.contains(k)) throw new WaferException(ckpt + "/optimizer.safetensors: no moment " + k);
                r.read("m." + n, opt.firstMoments().get(i), 0);
                r.read("v." + n, opt.secondMoments().get(i), 0);
            }
        }
        opt.setStepCount(s.get("adamw_steps").asLong());
        return s;
    }

    /** A checkpoint's state.json. */
    public static JsonNode state(Path ckpt) {
        JsonNode s;
        try {
            s = JSON.readTree(ckpt.resolve("state.json").toFile());
        } catch (IOException e) {
            throw new WaferException(ckpt + "/state.json: unreadable (" + e.getMessage() + ")");
        }
        if (!s.has("step") || !s.has("adamw_steps")) throw new WaferException(ckpt + "/state.json: incomplete (no step or adamw_steps)");
        return s;
    }

    static String describe(GptConfig c) {
        return c.nLayer() + " layers, n_embd " + c.nEmbd() + ", " + c.nHead() + " heads, vocab " + c.vocabSize()
                + ", n_positions " + c.nPositions();
    }

    static void deleteTree(Path p) throws IOException { ai.wafer.io.AtomicFiles.deleteTree(p); }
}
