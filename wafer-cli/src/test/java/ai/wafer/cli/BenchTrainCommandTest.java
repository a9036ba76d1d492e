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

        PretrainCliTest.Run text = wafer("bench", "train", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--vocab-size", "64",
                "--batch-size", "2", "--seq-len", "8", "--steps", "2", "--max-warmup", "0");
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().contains("median of 2 after 0 warm-up steps; min "), text.out());
        assertTrue(text.out().contains("had not settled after 0"), text.out());

        assertEquals(2, wafer("bench", "train", "--steps", "0").code());
    }
}
