package ai.wafer.track;

import ai.wafer.WaferException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class MetricsLogTest {
    @TempDir Path dir;

    @Test void writesOneFlushedJsonObjectPerLineAndReadsThemBack() throws Exception {
        try (MetricsLog log = MetricsLog.open(dir.resolve("run"))) {
            log.log(1, "loss", 10.5, "lr", 1e-4);
            // flushed per line: visible before close
            assertEquals(1, Files.readAllLines(log.file()).size());
            log.log(2, "loss", 9.25, "grad_norm", 1.5, "tokens_per_s", 1234);
            Map<String, Object> evalRow = new LinkedHashMap<>();
            evalRow.put("step", 2);
            evalRow.put("eval_loss", 9.75);
            log.log(evalRow);
        }
        List<String> lines = Files.readAllLines(dir.resolve("run/metrics.jsonl"));
        assertEquals("{\"step\":1,\"loss\":10.5,\"lr\":1.0E-4}", lines.get(0));
        List<Map<String, Object>> rows = MetricsLog.read(dir.resolve("run"));
        assertEquals(3, rows.size());
        assertEquals(10.5, rows.get(0).get("loss"));
        assertEquals(1234, rows.get(1).get("tokens_per_s"));
        assertEquals(9.75, rows.get(2).get("eval_loss"));
        assertFalse(rows.get(2).containsKey("loss"));
    }

    @Test void nonFiniteValuesSurviveTheRoundTrip() {
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.log(1, "loss", Double.NaN);
        }
        assertTrue(Double.isNaN(MetricsLog.asDouble(MetricsLog.read(dir).get(0).get("loss"))));
    }

    @Test void resumeDropsRowsAfterTheResumeStepAndAppends() {
        try (MetricsLog log = MetricsLog.open(dir)) {
            for (int s = 1; s <= 5; s++) log.log(s, "loss", 10.0 - s);
            log.log(Map.of("note", "no step: kept"));
        }
        try (MetricsLog log = MetricsLog.openForResume(dir, 3)) {
            log.log(4, "loss", 0.5);
        }
        List<Map<String, Object>> rows = MetricsLog.read(dir);
        assertEquals(java.util.Arrays.asList(1, 2, 3, null, 4), rows.stream().map(r -> r.get("step")).toList());
        assertEquals(0.5, rows.get(4).get("loss"));
    }

    @Test void aTornLastLineFromACrashIsSkippedAndRepairedOnAppend() throws Exception {
        Path file = dir.resolve(MetricsLog.FILE_NAME);
        Files.writeString(file, "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"lo");
        assertEquals(1, MetricsLog.read(dir).size());
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.log(2, "loss", 1.0);
        }
        List<Map<String, Object>> rows = MetricsLog.read(dir);
        assertEquals(2, rows.size());
        assertEquals(1.0, rows.get(1).get("loss"));
    }

    @Test void aCompleteButUnterminatedLastLineIsKept() throws Exception {
        Files.writeString(dir.resolve(MetricsLog.FILE_NAME), "{\"step\":1,\"loss\":2.0}");
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.log(2, "loss", 1.0);
        }
        assertEquals(2, MetricsLog.read(dir).size());
    }

    @Test void aCorruptLineInTheMiddleIsAnErrorNamingTheLine() throws Exception {
        Files.writeString(dir.resolve(MetricsLog.FILE_NAME), "{\"step\":1}\nnot json\n{\"step\":3}\n",
                StandardOpenOption.CREATE);
        WaferException e = assertThrows(WaferException.class, () -> MetricsLog.read(dir));
        assertTrue(e.getMessage().contains("metrics.jsonl:2"), e.getMessage());
    }

    @Test void missingLogIsAUserError() {
        assertThrows(WaferException.class, () -> MetricsLog.read(dir.resolve("nope")));
    }
}
