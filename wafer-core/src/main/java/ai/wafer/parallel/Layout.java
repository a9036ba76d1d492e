package ai.wafer.parallel;

import ai.wafer.WaferException;

/**
 * How a job's ranks are laid out: dp data-parallel replicas, each a pipeline of pp stages, each stage
 * split over tp tensor-parallel ranks. Tensor parallelism is the innermost dimension (adjacent ranks,
 * so on one machine: it exchanges the most, after every layer), pipeline next, data outermost (it
 * exchanges once per step). Rank = (d * pp + s) * tp + t.
 */
public record Layout(int dp, int tp, int pp) {
    public Layout {
        if (dp < 1 || tp < 1 || pp < 1) throw new WaferException("--parallel: every degree must be >= 1, got dp=" + dp + ",tp=" + tp + ",pp=" + pp);
    }

    public static Layout single() { return new Layout(1, 1, 1); }

    /** Parses "dp=2,tp=2" (any order, absent degrees are 1). */
    public static Layout parse(String s) {
        int dp = 1, tp = 1, pp = 1;
        if (s == null || s.isBlank()) throw new WaferException("--parallel: empty layout; write e.g. dp=2,tp=2");
        for (String part : s.split(",")) {
            String[] kv = part.trim().split("=");
            if (kv.length != 2) throw new WaferException("--parallel: '" + part.trim() + "' is not NAME=N (names: dp, tp, pp)");
            int n;
            try { n = Integer.parseInt(kv[1].trim()); } catch (NumberFormatException e) {
                throw new WaferException("--parallel: '" + kv[1].trim() + "' in '" + part.trim() + "' is not a whole number");
            }
            switch (kv[0].trim().toLowerCase(java.util.Locale.ROOT)) {
                case "dp" -> dp = n;
                case "tp" -> tp = n;
                case "pp" -> pp = n;
                default -> throw new WaferException("--parallel: unknown degree '" + kv[0].trim() + "' (known: dp, tp, pp)");
            }
        }
        return new Layout(dp, tp, pp);
    }

    public int size() { return dp * tp * pp; }

    public int dpRank(int rank) { return rank / (tp * pp); }
    public int ppRank(int rank) { return rank / tp % pp; }
    public int tpRank(int rank) { return rank % tp; }

    /** This rank's three groups, split from the world communicator (which must have size() ranks). */
    public Groups groups(Communicator world) {
        if (world.size() != size())
            throw new WaferException("--parallel " + this + " needs " + size() + " ranks, but the job has " + world.size()
                    + (world.size() == 1 ? " (launch with mpirun -np " + size() + ", or use threads)" : ""));
        int r = world.rank(), d = dpRank(r), s = ppRank(r), t = tpRank(r);
        Communicator tpc = world.split(d * pp + s, t);
        Communicator ppc = world.split(d * tp + t + size(), s);
        Communicator dpc = world.split(s * tp + t + 2 * size(), d);
        return new Groups(world, dpc, tpc, ppc);
    }

    /** The communicators of one rank: the whole job and its data-, tensor- and pipeline-parallel groups. */
    public record Groups(Communicator world, Communicator dp, Communicator tp, Communicator pp) {}

    @Override public String toString() { return "dp=" + dp + ",tp=" + tp + ",pp=" + pp; }
}
