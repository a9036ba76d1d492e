package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.Example;
import ai.wafer.io.AtomicFiles;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Parameter;
import ai.wafer.peft.Peft;
import ai.wafer.train.AdamW;
import ai.wafer.train.TrainCheckpoint;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * Fine-tuning's training checkpoint, written and read by {@link TrainCheckpoint} (pretraining's code, one
 * implementation): {@code trainable.safetensors} holds every trainable tensor by name (the whole model for full
 * fine-tuning; the method's tensors and the head otherwise: the frozen rest is the base model itself), beside the
 * AdamW moments, and state.json has where the loop stands ({@link Position}) and the run's identity (the options and
 * inputs a resume must share with it, checked by name).
 */
final class FinetuneCheckpoint {
    private FinetuneCheckpoint() {}

    static final String WEIGHTS = "trainable.safetensors";
    /** The best model's files as they were at the checkpoint (hard links: no copy; every file is replaced, never rewritten). */
    static final String BEST = "best";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Where the loop stands after {@code step}: the next batch is number {@code batch} of {@code epoch}'s shuffled
     * batches (the epoch's seed fixes their order, so this is the whole data position); LoRA's mask streams
     * ({@code randomState}); the best dev score so far (null: none yet), its step, and evaluations since.
     */
    record Position(int step, int epoch, int batch, long[] randomState, Double bestScore, int bestStep, int sinceBest) {}

    /**
     * What a resume must share with the run it continues, by the option it comes from: the task, method, base model,
     * training examples (after --max-train), and what fixes the batches' contents and order.
     */
    static Map<String, String> identity(FinetuneModel fm, TaskData train, Finetuner.Options opt) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("--task", fm.task.cliName);
        m.put("--method", method(fm.spec));
        m.put("--model", "a base of fingerprint " + fm.baseFingerprint);
        m.put("--train", train.examples().size() + " examples of fingerprint " + fingerprint(train));
        m.put("--batch-size", Integer.toString(opt.batchSize()));
        m.put("--grad-accum", Integer.toString(opt.gradAccum()));
        m.put("--max-length", Integer.toString(opt.maxLength()));
        m.put("--seed", Long.toString(opt.seed()));
        return m;
    }

    /** The method and the options of its kind. */
    private static String method(Peft.Spec s) {
        return s.kind().cliName() + switch (s.kind()) {
            case LORA -> " (r " + s.lora().r() + ", alpha " + s.lora().alpha() + ", dropout " + s.lora().dropout() + ", targets " + s.lora().targets() + ")";
            case TOP_K -> " (k " + s.topK() + ")";
            case PREFIX -> " (" + s.prefixTokens() + " tokens)";
            case ADAPTER -> " (size " + s.adapterSize() + ")";
            default -> "";
        };
    }

    /** CRC32C of the examples' tokens and labels and of the label names: the data, whatever file it came from. */
    static String fingerprint(TaskData d) {
        CRC32C crc = new CRC32C();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4);
        java.util.function.IntConsumer put = v -> crc.update(b.clear().putInt(v).array());
        for (Example e : d.examples()) {
            put.accept(e.ids().length);
            for (int t : e.ids()) put.accept(t);
            if (e.labels() != null) for (int l : e.labels()) put.accept(l);
            put.accept(e.label());
        }
        for (String l : d.labels()) crc.update(l.getBytes(StandardCharsets.UTF_8));
        return String.format("%08x", crc.getValue());
    }

    /** Writes the checkpoint of {@code pos.step()} into {@code runDir}/checkpoints, then keeps the newest {@code keep} (0: all). */
    static Path save(Path runDir, int keep, Position pos, Map<String, String> identity, AdamW adamw) {
        ObjectNode s = JSON.createObjectNode();
        s.set("finetune", JSON.valueToTree(pos));
        s.set("run", JSON.valueToTree(identity));
        Map<String, SafeTensors.Tensor> values = new LinkedHashMap<>();
        for (Parameter p : adamw.parameters())
            values.put(p.name, new SafeTensors.Tensor(Arrays.stream(p.shape).asLongStream().toArray(),
                    MemorySegment.ofArray(p.data).asSlice(4L * p.off, 4L * p.size())));
        Path dir = TrainCheckpoint.write(runDir, pos.step(), tmp -> {
            SafeTensors.write(tmp.resolve(WEIGHTS), values);
            if (pos.bestStep() > 0) keepBest(runDir, tmp.resolve(BEST));
        }, adamw, s);
        TrainCheckpoint.prune(runDir, keep);
        return dir;
    }

    /**
     * Checks that {@code ckpt} belongs to a run of this {@code identity} (an error names the first option that
     * differs), restores the trainable values and AdamW's moments and step, and returns where the loop stood.
     */
    static Position load(Path ckpt, Map<String, String> identity, AdamW adamw) {
        if (!Files.isRegularFile(ckpt.resolve(WEIGHTS)))
            throw new WaferException(ckpt + ": not a fine-tuning checkpoint (no " + WEIGHTS + "; a pretraining one resumes with wafer pretrain)");
        JsonNode s = TrainCheckpoint.state(ckpt);
        for (var e : identity.entrySet()) {
            String was = s.path("run").path(e.getKey()).asText(null);
            if (!e.getValue().equals(was))
                throw new WaferException(ckpt + ": " + e.getKey() + " differs from the run this checkpoint continues: it had "
                        + was + ", this run has " + e.getValue() + " (a resume needs the same " + e.getKey() + ")");
        }
        for (var e : s.path("run").properties()) // an option of that run that this one lacks (--replay, --ewc)
            if (!identity.containsKey(e.getKey()))
                throw new WaferException(ckpt + ": the run this checkpoint continues had " + e.getKey() + " (" + e.getValue().asText()
                        + "), this run has not (a resume needs the same " + e.getKey() + ")");
        try (SafeTensors.Reader r = SafeTensors.open(ckpt.resolve(WEIGHTS))) {
            for (Parameter p : adamw.parameters()) {
                if (!r.contains(p.name) || r.info(p.name).numel() != p.size())
                    throw new WaferException(ckpt + "/" + WEIGHTS + ": no tensor " + p.name + " of " + p.size() + " values");
                r.read(p.name, p.data, p.off);
            }
        }
        TrainCheckpoint.restore(ckpt, adamw);
        try {
            return JSON.treeToValue(s.get("finetune"), Position.class);
        } catch (IOException | IllegalArgumentException e) {
            throw new WaferException(ckpt + "/state.json: unreadable fine-tuning position (" + e.getMessage() + ")");
        }
    }

    /**
     * Sets {@code out} up for a resume from {@code ckpt}: into another --out than the run's, it starts as a copy of the
     * run's files (metrics.jsonl, TensorBoard events), not of its checkpoints; either way the best model is the one of
     * the checkpoint's time (a later one, of the steps the resume redoes, may be there).
     */
    static void adopt(Path ckpt, Path out) {
        Path dir = ckpt.toAbsolutePath().normalize().getParent(), run = dir.getParent(); // run/checkpoints/step-N
        if (dir.getFileName().toString().equals("checkpoints") && !run.equals(out.toAbsolutePath().normalize())) copyFiles(run, out);
        if (Files.isDirectory(ckpt.resolve(BEST))) copyFiles(ckpt.resolve(BEST), out);
    }

    private static void copyFiles(Path from, Path to) {
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) AtomicFiles.copy(f, to.resolve(f.getFileName()));
        } catch (IOException e) {
            throw new WaferException(from + ": cannot copy its files into " + to + ": " + e.getMessage(), e);
        }
    }

    /** Links (or, where the file system cannot, copies) the files of the run's saved model into {@code best}. */
    private static void keepBest(Path runDir, Path best) throws IOException {
        Files.createDirectories(best);
        try (Stream<Path> files = Files.list(runDir)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String n = f.getFileName().toString();
                if (n.equals(ai.wafer.track.MetricsLog.FILE_NAME) || n.equals("curves.png") || n.startsWith("events.out.tfevents") || n.endsWith(".tmp")) continue;
                try {
                    Files.createLink(best.resolve(n), f);
                } catch (UnsupportedOperationException | IOException e) {
                    Files.copy(f, best.resolve(n));
                }
            }
        }
    }
}
