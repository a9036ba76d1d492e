package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import ai.wafer.train.Pretrainer;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static ai.wafer.parallel.ParallelFixtures.*;

/**
 * The program each MPI process of {@link MpiTest} runs: {@code MpiCheck MODE SHARD OUT STEPS}.
 * MODE dp / dp-zero trains the fixture model data-parallel, tp tensor-parallel; "collectives" exercises each collective;
 * "resume-dp" / "resume-tp" continue a run whose checkpoint only rank 0 can see;
 * "die" makes rank 1 exit before a collective that rank 0 waits in, "stall" makes it stop (SIGSTOP) there instead.
 * Rank 0 writes the results to OUT.
 */
public final class MpiCheck {
    public static void main(String[] args) throws IOException {
        String mode = args[0];
        Path shard = Path.of(args[1]), out = Path.of(args[2]);
        int steps = Integer.parseInt(args[3]);
        // "stall": a 2 s watchdog; the others keep the default
        MpiCommunicator world = mode.equals("stall") ? MpiCommunicator.world(Duration.ofSeconds(2)) : MpiCommunicator.world();
        try (DataOutputStream o = world.rank() == 0 ? new DataOutputStream(Files.newOutputStream(out)) : null) {
            switch (mode) {
                case "dp", "dp-zero" -> {
                    Pretrainer.Options opt = options(steps, 4, 16, 1);
                    Gpt m = Gpt.init(CFG, SEED);
                    try (TokenLoader loader = new TokenLoader(List.of(shard), 4, 16, false, 0)) {
                        DataParallelTrainer t = new DataParallelTrainer(world, m, loader, opt, mode.equals("dp-zero"), 4096);
                        for (int s = 0; s < steps; s++) {
                            Pretrainer.StepResult r = t.trainStep();
                            if (o != null) { o.writeFloat(r.loss()); o.writeDouble(r.gradNorm()); o.writeLong(t.lastStepBytes()); }
                        }
                    }
                    if (o != null) for (Parameter p : m.parameters()) for (float x : p.array()) o.writeFloat(x);
                }
                case "tp" -> {
                    Pretrainer.Options opt = options(steps, 4, 16, 1);
                    Layout l = Layout.parse("tp=2");
                    try (TokenLoader loader = new TokenLoader(List.of(shard), 4, 16, false, 0)) {
                        ParallelTrainer t = new ParallelTrainer(l, l.groups(world), Gpt.init(CFG, SEED), loader, opt);
                        for (int s = 0; s < steps; s++) {
                            Pretrainer.StepResult r = t.trainStep();
                            if (o != null) { o.writeFloat(r.loss()); o.writeDouble(r.gradNorm()); o.writeLong(t.lastStepBytes()); }
                        }
                        Gpt full = t.gather();
                        if (o != null) for (Parameter p : full.parameters()) for (float x : p.array()) o.writeFloat(x);
                    }
                }
                case "finetune-lora" -> {
                    // DataParallelFinetuneTest's LoRA run; rank 0 logs into OUT.run, writes bytes per step and the trainable tensors
                    var train = DataParallelFinetuneTest.toy(37, 1);
                    var setup = new DataParallelFinetune.Setup(r -> DataParallelFinetuneTest.model(DataParallelFinetuneTest.LORA, train),
                            train, null, DataParallelFinetuneTest.options(8, 1, 1, 1e-2f), Path.of(out + ".run"), "toy", null, null);
                    DataParallelFinetune.Result r = DataParallelFinetune.onRank(world, setup);
                    if (o != null) {
                        o.writeLong(r.bytesPerStep());
                        for (Parameter p : r.model().parameters()) if (p.trainable()) for (float x : p.array()) o.writeFloat(x);
                    }
                }
                case "collectives" -> {
                    int p = world.size(), r = world.rank();
                    float[] a = {r + 1, 10 * (r + 1)};
                    world.allReduceSum(a, 0, 2);
                    double[] d = {0.5 * r};
                    world.allReduceSum(d, 0, 1);
                    float[] rs = new float[2 * p];
                    for (int i = 0; i < rs.length; i++) rs[i] = i + r;
                    world.reduceScatterSum(rs, 0, 2);
                    float[] g = new float[p];
                    g[r] = 100 + r;
                    world.allGather(g, 0, 1);
                    float[] ping = new float[1];
                    world.send(new float[]{7 + r}, 0, 1, 1 - r, 3);
                    world.recv(ping, 0, 1, 1 - r, 3);
                    Communicator self = world.split(r, 0);
                    float[] one = {5};
                    self.allReduceSum(one, 0, 1);
                    world.barrier();
                    if (o != null) {
                        for (float x : a) o.writeFloat(x);
                        o.writeDouble(d[0]);
                        o.writeFloat(rs[0]); o.writeFloat(rs[1]);
                        for (float x : g) o.writeFloat(x);
                        o.writeFloat(ping[0]);
                        o.writeInt(self.size());
                        o.writeFloat(one[0]);
                    }
                    self.close();
                }
                case "die" -> {
                    if (world.rank() == 1) Runtime.getRuntime().halt(3);
                    world.allReduceSum(new float[4], 0, 4); // rank 1 never comes
                }
                case "resume-dp", "resume-tp" -> {
                    // rank 0 continues the run in OUT.run; rank 1 is given a directory that does not exist, as on a machine of its own
                    Path run = Path.of(out + (world.rank() == 0 ? ".run" : ".absent"));
                    var setup = new ParallelPretrain.Setup(() -> Gpt.init(CFG, SEED), List.of(shard), List.of(), false, 0, options(steps, 4, 16, 1),
                            false, run, new Pretrainer.Reporting(null, 0, 0, 0, 0, false), null, null, null);
                    ParallelPretrain.Result r = ParallelPretrain.onRank(Layout.parse(mode.substring(7) + "=2"), world, setup);
                    if (o != null) for (Pretrainer.StepResult x : r.steps()) { o.writeFloat(x.loss()); o.writeDouble(x.gradNorm()); }
                }
                case "stall" -> {
                    world.allReduceSum(new float[4], 0, 4);
                    if (world.rank() == 1) // stops without dying, as a rank stopped by a debugger or a cut link looks to the others
                        new ProcessBuilder("kill", "-STOP", String.valueOf(ProcessHandle.current().pid())).start();
                    world.allReduceSum(new float[4], 0, 4); // rank 1 never comes
                }
                default -> throw new IllegalArgumentException(mode);
            }
        }
        world.close();
    }
}
