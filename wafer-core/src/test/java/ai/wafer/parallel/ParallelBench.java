package ai.wafer.parallel;

import ai.wafer.data.TokenLoader;
import ai.wafer.io.TokenShard;
import ai.wafer.model.*;
import ai.wafer.train.*;
import java.nio.file.*;
import java.time.Duration;
import java.util.*;

/**
 * Measures BENCHMARKS.md: step time and communication share, dp=2 threads vs one process, full vs BitFit bytes;
 * with argument {@code mpi}, under {@code mpirun -np 2}, dp=2 as two processes.
 */
public final class ParallelBench {
    /** Delegates and times every collective. */
    static final class Timed implements Communicator {
        final Communicator c; long nanos;
        Timed(Communicator c) { this.c = c; }
        long t() { return System.nanoTime(); }
        public int rank() { return c.rank(); } public int size() { return c.size(); }
        public void allReduceSum(float[] b, int o, int n) { long t = t(); c.allReduceSum(b, o, n); nanos += t() - t; }
        public void allReduceSum(double[] b, int o, int n) { long t = t(); c.allReduceSum(b, o, n); nanos += t() - t; }
        public void reduceScatterSum(float[] b, int o, int n) { long t = t(); c.reduceScatterSum(b, o, n); nanos += t() - t; }
        public void allGather(float[] b, int o, int n) { long t = t(); c.allGather(b, o, n); nanos += t() - t; }
        public void send(float[] b, int o, int n, int d, int tag) { c.send(b, o, n, d, tag); }
        public void recv(float[] b, int o, int n, int s, int tag) { c.recv(b, o, n, s, tag); }
        public void barrier() { c.barrier(); }
        public Communicator split(int a, int b) { return c.split(a, b); }
        public long bytesSent() { return c.bytesSent(); }
        public void close() { }
    }

    public static void main(String[] a) throws Exception {
        GptConfig cfg = GptConfig.of(4, 128, 4, 4096, 256);
        int B = 8, T = 128, steps = 16, warm = 4;
        int[] toks = new int[200_000];
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < toks.length; i++) toks[i] = r.nextInt(4096);
        Path shard = Files.createTempFile("bench", ".bin");
        TokenShard.write(shard, toks);
        Pretrainer.Options o = new Pretrainer.Options(steps, B, T, 1, new LrSchedule(LrSchedule.Kind.CONSTANT, 1e-3f, 0, steps, 1f), AdamW.Hyper.defaults(), 1f);
        if (a.length > 0 && a[0].equals("mpi")) { // under mpirun -np 2 (WAFER_THREADS=1): this process is one rank
            try (Communicator world = MpiCommunicator.world()) {
                for (String mode : new String[]{"full", "bitfit"}) {
                    double[] x = dpRun(new Timed(world), cfg, shard, o, mode, false, steps, warm);
                    if (world.rank() == 0) System.out.printf("dp=2 MPI processes %s: %.1f ms/step, communication %.1f%% of the step (exposed %.1f%%), %,d bytes sent/rank/step%n",
                            mode, x[0], 100 * x[1], 100 * x[4], (long) x[2]);
                }
            }
            return;
        }
        // 1 process, 2 threads
        try (TokenLoader l = new TokenLoader(List.of(shard), B, T, false, 0)) {
            Pretrainer p = new Pretrainer(Gpt.init(cfg, 1), l, o);
            double tot = 0;
            for (int s = 0; s < steps; s++) { var res = p.trainStep(); if (s >= warm) tot += res.seconds(); }
            System.out.printf("one process, %d threads: %.1f ms/step%n", ai.wafer.tensor.Parallel.threads(), 1e3 * tot / (steps - warm));
        }
        for (String mode : new String[]{"full", "bitfit"}) for (boolean zero : new boolean[]{false, true}) {
            List<double[]> res = ThreadCommunicator.run(2, Duration.ofMinutes(5), c -> dpRun(new Timed(c), cfg, shard, o, mode, zero, steps, warm));
            double[] x = res.get(0);
            long pred = Plan.of(cfg, new Layout(2, 1, 1), B, T, 1, zero, x[3]).worst().dpBytes();
            System.out.printf("dp=2 threads %s%s: %.1f ms/step, communication %.1f%% of the step (exposed %.1f%%), %,d bytes sent/rank/step (plan: %,d; trainable %.4f)%n",
                    mode, zero ? " zero1" : "", x[0], 100 * x[1], 100 * x[4], (long) x[2], pred, x[3]);
        }
    }

    /** One rank's dp=2 run: ms/step, communication share, bytes sent in the last step, trainable fraction. */
    static double[] dpRun(Timed tc, GptConfig cfg, Path shard, Pretrainer.Options o, String mode, boolean zero, int steps, int warm) {
        Gpt m = Gpt.init(cfg, 1);
        if (mode.equals("bitfit")) for (Parameter q : m.parameters()) q.setTrainable(!q.decays()); // biases + LayerNorms
        try (TokenLoader l = new TokenLoader(List.of(shard), o.batchSize(), o.seqLen(), false, 0)) {
            // -Dbucket.bytes=N: smaller buckets start exchanging earlier in backward (this model fits one 25 MB bucket)
            long bucket = Long.getLong("bucket.bytes", DataParallelTrainer.DEFAULT_BUCKET_BYTES);
            DataParallelTrainer t = new DataParallelTrainer(tc, m, l, o, zero, bucket);
            double tot = 0, exposed = 0; long comm0 = 0;
            long trainable = 0; for (Parameter q : m.parameters()) if (q.trainable()) trainable += q.size();
            for (int s = 0; s < steps; s++) {
                if (s == warm) comm0 = tc.nanos;
                var x = t.trainStep();
                if (s >= warm) { tot += x.seconds(); exposed += t.lastExposedCommSeconds(); }
            }
            return new double[]{1e3 * tot / (steps - warm), (tc.nanos - comm0) / 1e9 / tot, t.lastStepBytes(), (double) trainable / m.parameterCount(),
                    exposed / tot};
        }
    }
}
