package ai.wafer.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** MSE, MAE and Pearson's r against PyTorch's float64 values (fixtures/seq-heads, tools/make_seq_heads.py). */
class RegressionReportTest {
    @Test void matchesPyTorch() throws Exception {
        JsonNode c = new ObjectMapper().readTree(Path.of("wafer-core/src/test/resources/fixtures/seq-heads/cases.json").toFile()).get("regression_report");
        double[] gold = new double[c.get("gold").size()], pred = new double[gold.length];
        for (int i = 0; i < gold.length; i++) { gold[i] = c.get("gold").get(i).asDouble(); pred[i] = c.get("pred").get(i).asDouble(); }
        RegressionReport r = RegressionReport.of(gold, pred);
        assertEquals(c.get("mse").asDouble(), r.mse(), 1e-12);
        assertEquals(c.get("mae").asDouble(), r.mae(), 1e-12);
        assertEquals(c.get("pearson").asDouble(), r.pearson(), 1e-12);
        assertEquals(gold.length, r.n());
        // no variance: r is undefined, and JSON gets null rather than NaN
        assertNull(RegressionReport.of(new double[] {1, 2}, new double[] {3, 3}).toMap().get("pearson"));
    }
}
