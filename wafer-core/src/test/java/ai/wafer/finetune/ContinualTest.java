package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.model.Parameter;
import ai.wafer.model.Task;
import ai.wafer.peft.Peft;
import ai.wafer.testutil.Fixtures;
import ai.wafer.testutil.ToyTasks;
import ai.wafer.train.LrSchedule;
import ai.wafer.train.TrainCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Continual learning's pieces: replayed examples in the batches ({@link Replay}) and the EWC penalty ({@link Ewc}). */
class ContinualTest {
    @TempDir Path tmp;

    static final GptConfig CFG = GptConfig.of(2, 16, 2, 31, 32);

    @Test
    void everyBatchHoldsItsShareOfReplayedExamplesAndAnEpochEveryNewOne() {
        TaskData b = ToyTasks.tagging(30, 1, 10), a = ToyTasks.tagging(13, 2, 10);
        Replay r = Replay.of(a, 0.25f, 8);
        assertEquals(2, r.perBatch(), "round(0.25 x 8)");
        Batcher own = new Batcher(6, 16, 30), padder = new Batcher(8, 16, 30);
        List<Batcher.Batch> epoch0 = r.batches(own, padder, b.examples(), 7, 0);
        assertEquals(5, epoch0.size(), "30 new examples, 6 a batch");
        Set<Integer> seenNew = new HashSet<>();
        List<Integer> replayed = new ArrayList<>();
        for (Batcher.Batch x : epoch0) {
            assertEquals(8, x.size());
            int old = 0;
            for (int i : x.examples()) if (i >= 30) { old++; replayed.add(i); } else assertTrue(seenNew.add(i), "new example " + i + " once");
            assertEquals(2, old, "each batch: 2 of the earlier task");
            for (int row = 0; row < x.size(); row++) { // the rows are the examples named
                var e = x.examples()[row] < 30 ? b.examples().get(x.examples()[row]) : a.examples().get(x.examples()[row] - 30);
                assertArrayEquals(e.ids(), Arrays.copyOfRange(x.ids(), row * x.length(), row * x.length() + e.length()));
            }
        }
        assertEquals(30, seenNew.size());
        assertEquals(10, new HashSet<>(replayed).size(), "10 draws from 13 earlier examples without repeats");
        // the data position (seed, epoch) fixes the batches; another epoch draws others
        assertEquals(replayed, replayedOf(r.batches(own, padder, b.examples(), 7, 0)));
        assertNotEquals(replayed, replayedOf(r.batches(own, padder, b.examples(), 7, 1)));
    }

    static List<Integer> replayedOf(List<Batcher.Batch> bs) {
        List<Integer> out = new ArrayList<>();
        for (var x : bs) for (int i : x.examples()) if (i >= 30) out.add(i);
        return out;
    }

    @Test
    void replayRefusesARatioThatLeavesNoRoomAndLabelsTheModelLacks() {
        TaskData a = ToyTasks.tagging(5, 2, 10);
        assertTrue(assertThrows(WaferException.class, () -> Replay.of(a, 0.05f, 8)).getMessage().contains("--replay-ratio 0.05"));
        assertTrue(assertThrows(WaferException.class, () -> Replay.of(a, 1f, 8)).getMessage().contains("in (0, 1)"));
        TaskData other = new TaskData(a.task(), a.examples(), a.gold(), a.positions(), a.labels(), Set.of("X-NEW"), 0, "a.conll");
        String m = assertThrows(WaferException.class, () -> Replay.of(other, 0.25f, 8)).getMessage();
        assertTrue(m.contains("a.conll") && m.contains("[X-NEW]"), m);
    }

    /** A Fisher file for {@code params}: random non-negative values. */
    static Map<String, SafeTensors.Tensor> fisher(List<Parameter> params, long seed) {
        Random rng = new Random(seed);
        Map<String, SafeTensors.Tensor> m = new LinkedHashMap<>();
        for (Parameter p : params) {
            float[] f = new float[p.size()];
            for (int i = 0; i < f.length; i++) f[i] = rng.nextFloat() * 2;
            m.put(p.name, new SafeTensors.Tensor(Arrays.stream(p.shape).asLongStream().toArray(), f));
        }
        return m;
    }

    /** The penalty's gradient against central differences of the penalty itself (a quadratic: they agree to rounding). */
    @Test
    void thePenaltysGradientIsItsDerivative() {
        Parameter w = new Parameter("h.0.mlp.c_fc.weight", 3, 4), bias = new Parameter("h.0.mlp.c_fc.bias", 4);
        Random rng = new Random(5);
        for (Parameter p : List.of(w, bias)) { for (int i = 0; i < p.size(); i++) p.data[i] = rng.nextFloat() - 0.5f; p.setTrainable(true); }
        List<Parameter> ps = List.of(w, bias);
        SafeTensors.write(tmp.resolve(Ewc.FILE), fisher(ps, 6));
        Ewc ewc = Ewc.load(tmp, 3f, ps); // anchored here
        for (Parameter p : ps) for (int i = 0; i < p.size(); i++) p.data[i] += rng.nextFloat() - 0.5f; // moved away
        for (Parameter p : ps) p.zeroGrad();
        double penalty = ewc.addGradient();
        assertTrue(penalty > 0);
        float eps = 1e-2f;
        Map<Parameter, float[]> grads = new LinkedHashMap<>();
        for (Parameter p : ps) grads.put(p, p.grad().clone()); // the differences below add to the gradients again
        for (Parameter p : ps) {
            float[] g = grads.get(p);
            for (int i = 0; i < p.size(); i++) {
                float keep = p.data[i];
                p.data[i] = keep + eps;
                double up = ewc.addGradient();
                p.data[i] = keep - eps;
                double down = ewc.addGradient();
                p.data[i] = keep;
                assertEquals((up - down) / (2 * eps), g[i], 1e-3 * Math.max(1, Math.abs(g[i])), p.name + "[" + i + "]");
            }
        }
    }

    @Test
    void aFisherFileThatDoesNotMatchTheModelIsRefusedByTensor() {
        Parameter w = new Parameter("h.0.mlp.c_fc.weight", 3, 4);
        w.setTrainable(true);
        String missing = assertThrows(WaferException.class, () -> Ewc.load(tmp, 1f, List.of(w))).getMessage();
        assertTrue(missing.contains(Ewc.FILE) && missing.contains("--fisher-examples"), missing);
        SafeTensors.write(tmp.resolve(Ewc.FILE), fisher(List.of(new Parameter("h.0.mlp.c_fc.weight", 4, 3)), 1));
        String shape = assertThrows(WaferException.class, () -> Ewc.load(tmp, 1f, List.of(w))).getMessage();
        assertTrue(shape.contains("h.0.mlp.c_fc.weight has shape [4, 3]") && shape.contains("[3, 4]"), shape);
        Parameter extra = new Parameter("classifier.weight", 2, 2);
        SafeTensors.write(tmp.resolve(Ewc.FILE), fisher(List.of(w, extra), 1));
        String more = assertThrows(WaferException.class, () -> Ewc.load(tmp, 1f, List.of(w))).getMessage();
        assertTrue(more.contains("[classifier.weight]"), more);
        assertTrue(assertThrows(WaferException.class, () -> Ewc.load(tmp, 0f, List.of(w))).getMessage().contains("--ewc"));
    }

    /**
     * The Fisher is the mean of squared per-example gradients, not the square of the mean gradient: over two examples
     * it is (g1^2 + g2^2) / 2, each g the gradient of one example's mean loss as a batch of one trains.
     */
    @Test
    void theFisherIsTheMeanOfSquaredPerExampleGradients() {
        TaskData d = ToyTasks.tagging(2, 3, 10);
        FinetuneModel fm = FinetuneModel.create(Gpt.init(CFG, 3), Task.TOKEN_CLASSIFICATION, d.labels(), Peft.Spec.of(Peft.Kind.FULL), 30, 4);
        Map<String, SafeTensors.Tensor> f = Ewc.estimate(fm, d, 2, 1, 16);
        Map<String, float[]> want = new LinkedHashMap<>();
        Batcher one = new Batcher(1, 16, 30);
        for (int e = 0; e < 2; e++) {
            fm.zeroGrad();
            fm.forward(one.batch(d.examples(), new int[] {e}));
            fm.backward(1f / fm.validTargets());
            for (Parameter p : fm.parameters()) {
                float[] s = want.computeIfAbsent(p.name, k -> new float[p.size()]);
                for (int i = 0; i < s.length; i++) s[i] += p.grad()[p.off + i] * p.grad()[p.off + i] / 2;
            }
        }
        assertEquals(want.keySet(), f.keySet(), "every trainable tensor, classifier included");
        for (String n : want.keySet()) assertArrayEquals(want.get(n), f.get(n).data(), 1e-6f * (1 + max(want.get(n))), n);
        assertTrue(max(want.get("classifier.weight")) > 0);
    }

    /** Against PyTorch (tools/make_fisher.py): the Fisher of a token classifier on gpt-tiny over three examples, in float64 there. */
    @Test
    void theFisherMatchesPyTorch() throws Exception {
        var cases = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Fixtures.fixture("fisher").resolve("cases.json").toFile());
        List<String> labels = new ArrayList<>();
        cases.get("labels").forEach(l -> labels.add(l.asText()));
        List<Example> examples = new ArrayList<>();
        for (var e : cases.get("examples")) examples.add(new Example(ints(e.get("ids")), ints(e.get("labels")), -1));
        TaskData d = new TaskData(Task.TOKEN_CLASSIFICATION, examples, List.of(), List.of(), labels, Set.of(), 0, "fisher/cases.json");
        FinetuneModel fm = FinetuneModel.create(ai.wafer.io.Checkpoint.load(Fixtures.fixture("gpt-tiny")), Task.TOKEN_CLASSIFICATION, labels,
                Peft.Spec.of(Peft.Kind.FULL), 100, 1);
        for (Parameter p : fm.headParameters()) {
            float[] v = floats(cases.get("head").get(p.name));
            System.arraycopy(v, 0, p.data, p.off, v.length);
        }
        Map<String, SafeTensors.Tensor> f = Ewc.estimate(fm, d, 3, 1, 32);
        var want = cases.get("fisher");
        for (var it = want.fieldNames(); it.hasNext(); ) {
            String n = it.next();
            Fixtures.assertClose(n, floats(want.get(n)), f.get(n).data(), 1e-3);
        }
    }

    static int[] ints(com.fasterxml.jackson.databind.JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = a.get(i).asInt();
        return v;
    }

    static float[] floats(com.fasterxml.jackson.databind.JsonNode a) {
        float[] v = new float[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) a.get(i).asDouble();
        return v;
    }

    static float max(float[] a) {
        float m = 0;
        for (float v : a) m = Math.max(m, v);
        return m;
    }

    /** A run with replay and EWC stopped at step 4 and resumed ends as the run that did not stop: the data position fixes the replayed examples. */
    @Test
    void replayAndEwcResumeBitForBit() {
        TaskData earlier = ToyTasks.tagging(20, 5, 10), train = ToyTasks.tagging(40, 1, 10);
        Gpt base = Gpt.init(CFG, 3);
        Path anchor = tmp.resolve("anchor");
        FinetuneModel first = FinetuneModel.create(base, Task.TOKEN_CLASSIFICATION, train.labels(), Peft.Spec.of(Peft.Kind.FULL), 30, 4);
        first.save(anchor, "toy");
        SafeTensors.write(anchor.resolve(Ewc.FILE), Ewc.estimate(first, earlier, 8, 1, 16));
        var o = ToyTasks.options(Peft.Kind.FULL, 1e-2f, 2);
        o = new Finetuner.Options(2, 8, 1, o.lr(), LrSchedule.Kind.LINEAR, 0.2f, 0, o.hyper(), o.gradClip(), 16, 0, 0, 1, false, o.padding());
        float[] whole = run(anchor, earlier, train, o, new Finetuner.Checkpoints(0, 4, 0, null), tmp.resolve("whole"));
        float[] resumed = run(anchor, earlier, train, o, new Finetuner.Checkpoints(0, 4, 0, TrainCheckpoint.dirFor(tmp.resolve("whole"), 4)), tmp.resolve("resumed"));
        assertArrayEquals(whole, resumed);
        // and the identity of the run includes them: a resume without replay is refused by name
        FinetuneModel plain = FinetuneModel.continued(anchor, Task.TOKEN_CLASSIFICATION);
        var ck = new Finetuner.Checkpoints(0, 4, 0, TrainCheckpoint.dirFor(tmp.resolve("whole"), 4));
        Finetuner.Options opt = o;
        String m = assertThrows(WaferException.class, () -> new Finetuner(plain, train, null, opt).checkpoints(ck)
                .continual(Replay.of(earlier, 0.25f, 8), null).run(tmp.resolve("other"), "toy", null)).getMessage();
        assertTrue(m.contains("--ewc"), m);
    }

    static float[] run(Path anchor, TaskData earlier, TaskData train, Finetuner.Options o, Finetuner.Checkpoints ck, Path out) {
        FinetuneModel fm = FinetuneModel.continued(anchor, Task.TOKEN_CLASSIFICATION);
        Ewc ewc = Ewc.load(anchor, 5f, fm.parameters().stream().filter(Parameter::trainable).toList());
        new Finetuner(fm, train, null, o).checkpoints(ck).continual(Replay.of(earlier, 0.25f, 8), ewc).run(out, "toy", null);
        List<Float> all = new ArrayList<>();
        for (Parameter p : fm.parameters()) for (int i = 0; i < p.size(); i++) all.add(p.data[p.off + i]);
        float[] v = new float[all.size()];
        for (int i = 0; i < v.length; i++) v[i] = all.get(i);
        return v;
    }
}
