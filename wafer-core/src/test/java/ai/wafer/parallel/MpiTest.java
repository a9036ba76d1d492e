package ai.wafer.parallel;

import ai.wafer.tensor.Gemm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static ai.wafer.parallel.ParallelFixtures.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Two real processes under mpirun (skipped where Open MPI is not installed). */
class MpiTest {
    @TempDir Path tmp;

    static String mpirun() {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(":"))
            if (Files.isExecutable(Path.of(d, "mpirun"))) return Path.of(d, "mpirun").toString();
        return null;
    }

    private record Out(int code, String log) {}

    private Out launch(String mode, Path shard, Path out, int steps, int timeoutS) throws Exception {
        String mpirun = mpirun();
        assumeTrue(mpirun != null, "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)");
        List<String> cmd = new ArrayList<>(List.of(mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                "--mca", "btl_vader_single_copy_mechanism", "none", "-x", "WAFER_THREADS=1", "-x", "WAFER_GEMM=java",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), MpiCheck.class.getName(),
                mode, shard.toString(), out.toString(), String.valueOf(steps)));
        Path log = tmp.resolve(mode + ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            throw new AssertionError(mode + ": mpirun did not finish in " + timeoutS + " s:\n" + Files.readString(log));
        }
        return new Out(p.exitValue(), Files.readString(log));
    }

    @Test void collectivesAcrossTwoProcesses() throws Exception {
        Path out = tmp.resolve("c.bin");
        Out r = launch("collectives", tokens(tmp, 100), out, 0, 120);
        assertEquals(0, r.code(), r.log());
        try (DataInputStream in = new DataInputStream(Files.newInputStream(out))) {
            assertEquals(3f, in.readFloat());
            assertEquals(30f, in.readFloat());
            assertEquals(0.5, in.readDouble());
            assertEquals(0f + 0 + 0 + 1, in.readFloat()); // chunk 0 of rank 0: (0 + 0) + (0 + 1)
            assertEquals(1f + 2, in.readFloat());
            assertEquals(100f, in.readFloat());
            assertEquals(101f, in.readFloat());
            assertEquals(8f, in.readFloat());  // rank 1 sent 7 + 1
            assertEquals(1, in.readInt());
            assertEquals(5f, in.readFloat());
        }
    }

    @Test void dataAndTensorParallelOverTwoProcessesEqualOneProcess() throws Exception {
        Path shard = tokens(tmp, 3000);
        int steps = 3;
        // the children use the Java GEMM; so must the reference (OpenBLAS sums in another order)
        Gemm.Impl before = Gemm.impl();
        Run want;
        try {
            Gemm.setImpl(Gemm.Impl.JAVA);
            want = reference(shard, options(steps, 4, 16, 1), steps);
        } finally {
            Gemm.setImpl(before);
        }
        for (String mode : new String[]{"dp", "dp-zero", "tp"}) {
            Path out = tmp.resolve(mode + ".bin");
            Out r = launch(mode, shard, out, steps, 180);
            assertEquals(0, r.code(), r.log());
            List<Float> losses = new ArrayList<>();
            List<Double> norms = new ArrayList<>();
            List<float[]> params = new ArrayList<>();
            try (DataInputStream in = new DataInputStream(Files.newInputStream(out))) {
                for (int s = 0; s < steps; s++) {
                    losses.add(in.readFloat());
                    norms.add(in.readDouble());
                    assertTrue(in.readLong() > 0);
                }
                for (float[] w : want.params()) {
                    float[] a = new float[w.length];
                    for (int i = 0; i < a.length; i++) a[i] = in.readFloat();
                    params.add(a);
                }
            }
            assertSameRun(want, new Run(losses, norms, params), "MPI " + mode);
        }
    }

    /** Issue 13 item 20: on machines with separate disks the run directory is on rank 0's only; rank 0 reads it and sends it. */
    @Test void resumeReadsTheCheckpointOnRankZeroOnly() throws Exception {
        Path shard = tokens(tmp, 3000);
        int steps = 4, saved = 2;
        Gemm.Impl before = Gemm.impl();
        try {
            Gemm.setImpl(Gemm.Impl.JAVA);
            Run want = reference(shard, options(steps, 4, 16, 1), steps);
            for (String mode : new String[]{"resume-dp", "resume-tp"}) {
                Path out = tmp.resolve(mode + ".bin");
                try (var loader = new ai.wafer.data.TokenLoader(List.of(shard), 4, 16, false, 0)) {
                    ai.wafer.train.Pretrainer p = new ai.wafer.train.Pretrainer(ai.wafer.model.Gpt.init(CFG, SEED), loader, options(steps, 4, 16, 1));
                    for (int s = 0; s < saved; s++) p.trainStep();
                    p.save(Path.of(out + ".run"));
                }
                Out r = launch(mode, shard, out, steps, 180);
                assertEquals(0, r.code(), r.log());
                try (DataInputStream in = new DataInputStream(Files.newInputStream(out))) {
                    for (int s = saved; s < steps; s++) {
                        float loss = in.readFloat();
                        double norm = in.readDouble();
                        assertTrue(Math.abs(loss - want.losses().get(s)) <= 1e-5 * want.losses().get(s), mode + " step " + (s + 1) + ": " + loss + " vs " + want.losses().get(s));
                        assertTrue(Math.abs(norm - want.norms().get(s)) <= 1e-5 * want.norms().get(s), mode + " step " + (s + 1) + ": norm " + norm + " vs " + want.norms().get(s));
                    }
                    assertEquals(0, in.available(), mode + ": more steps than expected");
                }
            }
        } finally {
            Gemm.setImpl(before);
        }
    }

    @Test void loraFineTuningOverTwoProcessesEqualsOneProcess() throws Exception {
        Path out = tmp.resolve("ft.bin");
        Gemm.Impl before = Gemm.impl();
        Run want;
        ai.wafer.finetune.FinetuneModel fm;
        try {
            Gemm.setImpl(Gemm.Impl.JAVA);
            var train = DataParallelFinetuneTest.toy(37, 1);
            fm = DataParallelFinetuneTest.model(DataParallelFinetuneTest.LORA, train);
            new ai.wafer.finetune.Finetuner(fm, train, null, DataParallelFinetuneTest.options(8, 1, 1, 1e-2f)).run(tmp.resolve("one"), "toy", null);
            want = DataParallelFinetuneTest.outcome(tmp.resolve("one"), fm);
        } finally {
            Gemm.setImpl(before);
        }
        Out r = launch("finetune-lora", tokens(tmp, 100), out, 0, 180);
        assertEquals(0, r.code(), r.log());
        Run got;
        try (DataInputStream in = new DataInputStream(Files.newInputStream(out))) {
            assertEquals(4 * DataParallelFinetuneTest.trainable(fm) + 16, in.readLong()); // trainable gradients + [loss, targets]
            List<float[]> params = new ArrayList<>();
            for (float[] w : want.params()) {
                float[] a = new float[w.length];
                for (int i = 0; i < a.length; i++) a[i] = in.readFloat();
                params.add(a);
            }
            got = new Run(DataParallelFinetuneTest.outcome(Path.of(out + ".run"), fm).losses(),
                    DataParallelFinetuneTest.outcome(Path.of(out + ".run"), fm).norms(), params);
        }
        assertSameRun(want, got, "MPI LoRA dp=2");
    }

    @Test void aProcessThatDiesEndsTheJobWithAMessage() throws Exception {
        Out r = launch("die", tokens(tmp, 100), tmp.resolve("d.bin"), 0, 120);
        assertNotEquals(0, r.code(), r.log());
        // mpirun ends rank 0 (waiting in an all-reduce) and names the process that died
        assertTrue(r.log().contains("exited with non-zero status") && r.log().contains("Exit code:    3"), r.log());
    }

    @Test void aProcessThatStopsAnsweringEndsTheJobWithAMessage() throws Exception {
        long t0 = System.nanoTime();
        Out r = launch("stall", tokens(tmp, 100), tmp.resolve("s.bin"), 0, 60); // without the watchdog: hangs, and fails here
        assertNotEquals(0, r.code(), r.log());
        // rank 0's watchdog names itself, the call, the group and the timeout; mpirun then ends the stopped rank too
        assertTrue(r.log().contains("wafer: rank 0: timed out after 2 s in MPI_Allreduce over the world (2 ranks);"), r.log());
        assertTrue(System.nanoTime() - t0 < 45e9, "took " + (System.nanoTime() - t0) / 1e9 + " s:\n" + r.log());
    }
}
