package ai.wafer.cli;

import ai.wafer.io.SafeTensors;
import ai.wafer.io.TokenShard;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.io.Checkpoint;
import ai.wafer.track.MetricsLog;
import ai.wafer.track.TensorBoardReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A pretraining run as a product: tracking files, checkpoints, resume after a kill, and its errors. */
class PretrainRunTest {
    @TempDir Path tmp;

    /** Bit-identical resume needs the same GEMM on both sides of the kill; another test may have changed it. */
    @org.junit.jupiter.api.BeforeEach
    void sameKernels() { ai.wafer.tensor.Gemm.setImpl(ai.wafer.tensor.Gemm.Impl.JAVA); }

    @org.junit.jupiter.api.AfterEach
    void defaultKernels() { ai.wafer.tensor.Gemm.setImpl(null); }

    private Path model() {
        Path d = tmp.resolve("init");
        Checkpoint.save(Gpt.init(GptConfig.of(2, 32, 2, 97, 64), 11), d);
        return d;
    }

    private Path tokens(String name, int n, long seed) {
        int[] t = new int[n];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < n; i++) t[i] = i % 7 == 0 ? 3 : r.nextInt(97); // some structure to learn
        Path p = tmp.resolve(name);
        TokenShard.write(p, t);
        return p;
    }

    private List<String> args(Path init, Path train, Path val, Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("pretrain", "--init", init.toString(), "--data", train.toString(),
                "--eval-data", val.toString(), "--steps", "6", "--batch-size", "2", "--seq-len", "16", "--lr", "3e-3",
                "--schedule", "cosine", "--warmup-steps", "2", "--eval-every", "3", "--eval-batches", "2",
                "--save-every", "2", "--no-progress", "--out", out.toString()));
        a.addAll(List.of(extra));
        return a;
    }

    /** Runs wafer in a child JVM that ends as abruptly as kill -9 after step {@code haltAfter} ({@link HaltAfterStep}). */
    private int child(int haltAfter, List<String> args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "ai.wafer.cli.HaltAfterStep", String.valueOf(haltAfter)));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("WAFER_GEMM", "java"); // the same kernels as this JVM (see @BeforeEach)
        Process p = pb.redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
        return p.waitFor();
    }

    @Test
    void killedRunResumesToTheSameParameters() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2);
        Path whole = tmp.resolve("whole"), broken = tmp.resolve("broken");
        assertEquals(0, PretrainCliTest.wafer(args(init, train, val, whole).toArray(String[]::new)).code());

        int code = child(5, args(init, train, val, broken));
        assertEquals(137, code, Files.readString(tmp.resolve("child.log")));
        assertFalse(Files.exists(broken.resolve("model.safetensors")), "the killed run never finished");
        assertTrue(Files.isDirectory(broken.resolve("checkpoints/step-000004")));

        var r = PretrainCliTest.wafer(args(init, train, val, broken, "--resume", broken.toString()).toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        try (SafeTensors.Reader a = SafeTensors.open(whole); SafeTensors.Reader b = SafeTensors.open(broken)) {
            for (String n : a.names()) assertArrayEquals(a.floats(n), b.floats(n), "bit-identical " + n);
        }
        // metrics: one row per step, no duplicates from the replayed step 5
        var rows = MetricsLog.read(broken);
        assertEquals(List.of(1.0, 2.0, 3.0, 4.0, 5.0, 6.0), rows.stream().map(m -> MetricsLog.asDouble(m.get("step"))).toList());
    }

    @Test
    void terminationSavesACheckpointFirst() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2), out = tmp.resolve("stopped");
        stopAfterThreeSteps(args(init, train, val, out), out);
    }

    @Test
    void terminationOfAParallelRunSavesACheckpointFirst() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2), out = tmp.resolve("stopped-dp");
        List<String> a = args(init, train, val, out);
        a.addAll(List.of("--parallel", "dp=2"));
        int step = stopAfterThreeSteps(a, out);
        // and it resumes on one process from there (the checkpoint is the one-rank form)
        List<String> r = args(init, train, val, tmp.resolve("resumed"), "--resume", out.toString());
        r.set(r.indexOf("--steps") + 1, Integer.toString(step + 1));
        var res = PretrainCliTest.wafer(r.toArray(String[]::new));
        assertEquals(0, res.code(), res.err());
    }

    /**
     * Runs the command in a child JVM with a budget it cannot finish, sends SIGTERM (as Ctrl-C's SIGINT: the shutdown
     * hook asks the loop to stop and waits for the save) once three steps are logged, and returns the step of the
     * checkpoint it saved.
     */
    private int stopAfterThreeSteps(List<String> a, Path out) throws Exception {
        a.set(a.indexOf("--steps") + 1, "100000");
        a.set(a.indexOf("--save-every") + 1, "0");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), "ai.wafer.cli.Wafer"));
        cmd.addAll(a);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("stop.log").toFile()).start();
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline && (!Files.exists(out.resolve("metrics.jsonl"))
                || MetricsLog.read(out).size() < 3)) Thread.sleep(100);
        p.destroy();
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "the run ends after a termination signal");
        String log = Files.readString(tmp.resolve("stop.log"));
        assertTrue(log.contains("stopped at step"), log);
        Path ck = ai.wafer.train.TrainCheckpoint.resolve(out);
        int step = Integer.parseInt(ck.getFileName().toString().substring("step-".length()));
        assertTrue(step >= 3 && step < 100000, "checkpoint at the step reached: " + ck);
        return step;
    }

    @Test
    void dataParallelRunEqualsTheSingleProcessRun() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2);
        List<String> one = args(init, train, val, tmp.resolve("one"), "--no-shuffle");
        List<String> two = args(init, train, val, tmp.resolve("two"), "--no-shuffle", "--parallel", "dp=2");
        assertEquals(0, PretrainCliTest.wafer(one.toArray(String[]::new)).code());
        var r = PretrainCliTest.wafer(two.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        try (SafeTensors.Reader a = SafeTensors.open(tmp.resolve("one")); SafeTensors.Reader b = SafeTensors.open(tmp.resolve("two"))) {
            for (String n : a.names()) ai.wafer.testutil.Fixtures.assertClose(n, a.floats(n), b.floats(n), 1e-3);
        }
    }

    @Test
    void tensorParallelCheckpointResumesOnAPipeline() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2);
        List<String> one = args(init, train, val, tmp.resolve("one"), "--no-shuffle");
        List<String> tp = args(init, train, val, tmp.resolve("tp"), "--no-shuffle", "--parallel", "tp=2");
        assertEquals(0, PretrainCliTest.wafer(one.toArray(String[]::new)).code());
        var r = PretrainCliTest.wafer(tp.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        // steps 5 and 6 again, from the tp=2 run's step-4 checkpoint, on two pipeline stages
        List<String> pp = args(init, train, val, tmp.resolve("pp"), "--no-shuffle", "--parallel", "pp=2",
                "--resume", ai.wafer.train.TrainCheckpoint.dirFor(tmp.resolve("tp"), 4).toString());
        r = PretrainCliTest.wafer(pp.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("step     5/6") && !r.out().contains("step     4/6"), r.out()); // it continued
        try (SafeTensors.Reader a = SafeTensors.open(tmp.resolve("one")); SafeTensors.Reader b = SafeTensors.open(tmp.resolve("pp"))) {
            for (String n : a.names()) ai.wafer.testutil.Fixtures.assertClose(n, a.floats(n), b.floats(n), 1e-3);
        }
    }

    @Test
    void parallelRunsEvaluateAndTrackLikeTheOneProcessRun() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2);
        var one = PretrainCliTest.wafer(args(init, train, val, tmp.resolve("one"), "--no-shuffle").toArray(String[]::new));
        assertEquals(0, one.code(), one.err());
        var want = MetricsLog.read(tmp.resolve("one"));
        for (String layout : List.of("dp=2", "tp=2", "pp=2")) {
            Path out = tmp.resolve(layout.replace('=', '_'));
            var r = PretrainCliTest.wafer(args(init, train, val, out, "--no-shuffle", "--parallel", layout).toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
            var got = MetricsLog.read(out);
            assertEquals(6, got.size(), layout);
            for (int i = 0; i < 6; i++) {
                String at = layout + ", step " + (i + 1);
                assertEquals(want.get(i).containsKey("eval_loss"), got.get(i).containsKey("eval_loss"), at);
                assertEquals(MetricsLog.asDouble(want.get(i).get("loss")), MetricsLog.asDouble(got.get(i).get("loss")), 1e-4, at);
                if (want.get(i).containsKey("eval_loss"))
                    assertEquals(MetricsLog.asDouble(want.get(i).get("eval_loss")), MetricsLog.asDouble(got.get(i).get("eval_loss")), 1e-4, at);
            }
            assertTrue(r.out().contains("step     3/6 | loss ") && r.out().contains(" | eval ") && r.out().contains(" sent/rank"), r.out());
            try (Stream<Path> s = Files.list(out)) {
                assertTrue(s.anyMatch(p -> p.getFileName().toString().startsWith("events.out.tfevents")), layout + ": TensorBoard events");
            }
            assertTrue(Files.isRegularFile(out.resolve("curves.png")), layout);
        }
    }

    @Test
    void terminationStopsAParallelRunAtACheckpointThatResumes() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2), out = tmp.resolve("stopped");
        int step = stopAfterThreeSteps(args(init, train, val, out, "--parallel", "dp=2"), out); // the ranks agree on a step, stop there and save
        // and it resumes, here on a tensor-parallel layout, for two more steps
        List<String> more = args(init, train, val, out, "--parallel", "tp=2", "--resume", out.toString());
        more.set(more.indexOf("--steps") + 1, String.valueOf(step + 2));
        var r = PretrainCliTest.wafer(more.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains(String.format("step %5d/%d", step + 1, step + 2)), r.out());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
        assertEquals(step + 2, MetricsLog.read(out).size(), "one metrics row per step");
    }

    @Test
    void runWritesMetricsTensorBoardAndCurves() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2), out = tmp.resolve("run");
        var r = PretrainCliTest.wafer(args(init, train, val, out).toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        var rows = MetricsLog.read(out);
        assertEquals(6, rows.size());
        assertTrue(rows.get(2).containsKey("eval_loss") && rows.get(5).containsKey("eval_loss") && !rows.get(0).containsKey("eval_loss"));
        Path events;
        try (Stream<Path> s = Files.list(out)) { events = s.filter(p -> p.getFileName().toString().startsWith("events.out.tfevents")).findFirst().orElseThrow(); }
        var scalars = TensorBoardReader.readScalars(events); // verifies every record's CRCs
        assertEquals(6, scalars.stream().filter(s -> s.tag().equals("loss")).count());
        assertEquals(MetricsLog.asDouble(rows.get(5).get("loss")),
                scalars.stream().filter(s -> s.tag().equals("loss") && s.step() == 6).findFirst().orElseThrow().value(), 1e-6);
        BufferedImage png = ImageIO.read(out.resolve("curves.png").toFile());
        int bg = png.getRGB(5, 5), differ = 0;
        for (int x = 100; x < png.getWidth() - 100; x += 3)
            for (int y = 60; y < png.getHeight() / 2; y += 3) if (png.getRGB(x, y) != bg) differ++;
        assertTrue(differ > 100, "the loss panel has a curve drawn in it");
    }

    /**
     * Issue 17 item 1: the last step is a checkpoint, so a finished run resumes and continues to a larger --steps,
     * bit for bit the longer run (constant schedule); TensorBoard is told to purge the steps a resume redoes; a resume
     * into another --out keeps the tokenizer files.
     */
    @Test
    void aFinishedRunContinuesWithMoreSteps() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2);
        Files.copy(Path.of("data/gpt2-tokenizer/vocab.json"), init.resolve("vocab.json"));
        Files.copy(Path.of("data/gpt2-tokenizer/merges.txt"), init.resolve("merges.txt"));
        List<String> longer = args(init, train, val, tmp.resolve("eight"));
        longer.set(longer.indexOf("--save-every") + 1, "0");
        longer.set(longer.indexOf("--steps") + 1, "8");
        longer.set(longer.indexOf("--schedule") + 1, "constant");
        var r0 = PretrainCliTest.wafer(longer.toArray(String[]::new));
        assertEquals(0, r0.code(), r0.err());
        List<String> first = new ArrayList<>(longer);
        first.set(first.indexOf("--steps") + 1, "5");
        first.set(first.indexOf("--out") + 1, tmp.resolve("five").toString());
        assertEquals(0, PretrainCliTest.wafer(first.toArray(String[]::new)).code());
        assertEquals(tmp.resolve("five/checkpoints/step-000005"), ai.wafer.train.TrainCheckpoint.resolve(tmp.resolve("five")));
        List<String> more = new ArrayList<>(longer);
        more.set(more.indexOf("--out") + 1, tmp.resolve("more").toString());
        more.set(more.indexOf("--init"), "--resume");
        more.set(more.indexOf("--resume") + 1, tmp.resolve("five").toString());
        var r = PretrainCliTest.wafer(more.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        try (SafeTensors.Reader a = SafeTensors.open(tmp.resolve("eight")); SafeTensors.Reader b = SafeTensors.open(tmp.resolve("more"))) {
            for (String n : a.names()) assertArrayEquals(a.floats(n), b.floats(n), n);
        }
        assertTrue(Files.isRegularFile(tmp.resolve("more/vocab.json")) && Files.isRegularFile(tmp.resolve("more/merges.txt")), "tokenizer kept");
        // a resume in place: the new event file starts with TensorBoard's purge marker at the first redone step
        List<String> again = new ArrayList<>(first);
        again.addAll(List.of("--resume", tmp.resolve("five/checkpoints/step-000005").toString()));
        again.set(again.indexOf("--steps") + 1, "6");
        assertEquals(0, PretrainCliTest.wafer(again.toArray(String[]::new)).code());
        try (var files = Files.list(tmp.resolve("five"))) {
            List<Path> ev = files.filter(f -> f.getFileName().toString().startsWith("events.out.tfevents")).sorted().toList();
            assertEquals(2, ev.size());
            var starts = TensorBoardReader.readEvents(ev.getLast()).stream().filter(e -> e.sessionStatus() == 1).toList();
            assertEquals(1, starts.size());
            assertEquals(6, starts.getFirst().step());
        }
    }

    @Test
    void badInputIsNamed() throws Exception {
        Path init = model(), train = tokens("train.bin", 3000, 1), val = tokens("val.bin", 600, 2), out = tmp.resolve("run");
        assertEquals(0, PretrainCliTest.wafer(args(init, train, val, out).toArray(String[]::new)).code());
        // a resume directory from another model shape
        var r = PretrainCliTest.wafer(args(init, train, val, tmp.resolve("x"), "--resume", out.toString()).toArray(String[]::new));
        assertEquals(0, r.code(), "same shape resumes: " + r.err());
        List<String> other = args(init, train, val, tmp.resolve("y"), "--resume", out.toString());
        other.set(other.indexOf("--init"), "--preset");
        other.set(other.indexOf("--preset") + 1, "tiny");
        r = PretrainCliTest.wafer(other.toArray(String[]::new));
        assertEquals(2, r.code());
        assertTrue(r.err().contains("holds a model of shape 2 layers, n_embd 32"), r.err());
        // an empty data directory
        Path empty = tmp.resolve("empty");
        Files.createDirectories(empty);
        r = PretrainCliTest.wafer(args(init, empty, val, tmp.resolve("z")).toArray(String[]::new));
        assertEquals(2, r.code());
        assertTrue(r.err().contains("no train token shards"), r.err());
    }
}
