package ai.wafer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code wafer bench train}: warm-up until settled, then min / median / max of the timed steps. */
class BenchTrainCommandTest {
    @Test
    void reportsMinMedianMaxAfterWarmup() throws Exception {
        PretrainCliTest.Run r = wafer("bench", "train", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--vocab-size", "64",
                "--batch-size", "2", "--seq-len", "8", "--steps", "3", "--max-warmup", "4", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out().strip());
        assertEquals(3, j.get("steps").asInt());
        int warm = j.get("warmup_steps").asInt();
        assertTrue(warm >= 3 && warm <= 4, "warm-up steps " + warm);
        double min = j.get("ms_min").asDouble(), med = j.get("ms_per_step").asDouble(), max = j.get("ms_max").asDouble();
        assertTrue(0 < min && min <= med && med <= max, min + " " + med + " " + max);
        assertEquals(j.get("spread").asDouble() <= 0.1, j.get("stable").asBoolean());
        assertTrue(j.get("alloc_mb_per_step").asDouble() >= 0, "the heap allocated a step is measured: " + r.out());

        PretrainCliTest.Run text = wafer("bench", "train", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--vocab-size", "64",
                "--batch-size", "2", "--seq-len", "8", "--steps", "2", "--max-warmup", "0");
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().contains("median of 2 after 0 warm-up steps; min "), text.out());
        assertTrue(text.out().matches("(?s).*allocated [0-9.]+ MB a step.*"), text.out());
        assertTrue(text.out().contains("had not settled after 0"), text.out());

        assertEquals(2, wafer("bench", "train", "--steps", "0").code());
    }

    /** --profile: each product's GFLOP/s from the shape's FLOPs and its time, against the path's own speed. */
    @Test
    void profileGivesEachProductsRateAndTheProductsShare() {
        PretrainCliTest.Run r = wafer("bench", "train", "--n-layer", "2", "--n-embd", "32", "--n-head", "2", "--vocab-size", "64",
                "--batch-size", "2", "--seq-len", "16", "--steps", "2", "--max-warmup", "1", "--profile");
        assertEquals(0, r.code(), r.err());
        var rows = new java.util.HashMap<String, String[]>();
        for (String line : r.out().split("\n")) {
            String[] f = line.trim().split("\\s{2,}|\\s+(?=[0-9])");
            rows.put(f[0], f);
        }
        assertTrue(r.out().contains("product path alone (fp32, 32 x 128 x 32"), r.out());
        // c_fc fwd: 2 x (2 x 16) x 32 x 128 flops a step over its milliseconds
        String[] fc = rows.get("c_fc fwd");
        double ms = Double.parseDouble(fc[1]), gflops = Double.parseDouble(fc[3]);
        // the rate from the printed milliseconds, both printed rounded (ms to 0.01, GFLOP/s to 0.1): within those bounds
        double flops = 2.0 * 32 * 32 * 128 * 2, lo = flops / ((ms + 0.005) * 1e6) - 0.05, hi = flops / (Math.max(ms - 0.005, 1e-9) * 1e6) + 0.05;
        assertTrue(lo <= gflops && gflops <= hi, lo + " <= " + gflops + " <= " + hi + ": " + String.join("|", fc));
        assertTrue(rows.containsKey("adamw") && rows.get("adamw").length == 3, "adamw timed, no rate: " + r.out());
        assertTrue(rows.containsKey("matrix products"), r.out());
    }
}
