package ai.wafer.cli;

import ai.wafer.io.Checkpoint;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.TokenizerFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static ai.wafer.cli.PretrainCliTest.wafer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code wafer evaluate --method prompt}: the fine-tuned reports for in-context classification, and what it refuses by name. */
class EvaluatePromptCliTest {
    @TempDir static Path tmp;
    static Path base, data, train;

    @BeforeAll
    static void setUp() throws Exception {
        base = tmp.resolve("base");
        Checkpoint.save(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1), base);
        TokenizerFiles.copy(Fixtures.TOKENIZER, base);
        data = Files.writeString(tmp.resolve("test.jsonl"), "{\"text\": \"win money now\", \"label\": \"spam\"}\n{\"text\": \"lunch at noon?\", \"label\": \"ham\"}\n");
        train = Files.writeString(tmp.resolve("train.jsonl"), "{\"text\": \"free prize\", \"label\": \"spam\"}\n{\"text\": \"see you\", \"label\": \"ham\"}\n{\"text\": \"cheap pills\", \"label\": \"spam\"}\n");
    }

    @Test
    void reportsAsForAFineTunedClassifier() throws Exception {
        Path png = tmp.resolve("cm.png");
        var r = wafer("evaluate", "--method", "prompt", "--model", base.toString(), "--data", data.toString(), "--fewshot-data", train.toString(),
                "--shots", "2", "--format", "json", "--confusion-png", png.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("sequence-classification", j.get("task").asText());
        assertEquals(2, j.get("examples").asInt());
        assertTrue(j.get("report").has("accuracy") && j.has("confusion_matrix") && Files.size(png) > 0, r.out());
        var text = wafer("evaluate", "--method", "prompt", "--model", base.toString(), "--data", data.toString(), "--confusion-png", png.toString());
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().contains("sequence-level classification report") && text.out().contains("confusion matrix"), text.out());
    }

    @Test
    void refusesWhatPromptingDoesNotDoByName() throws Exception {
        Path conll = Files.writeString(tmp.resolve("pos.conll"), "The\tat\ncat\tnn\n");
        var tagging = wafer("evaluate", "--method", "prompt", "--model", base.toString(), "--data", conll.toString());
        assertEquals(2, tagging.code());
        assertTrue(tagging.err().contains("is CoNLL: token classification is not supported by prompting"), tagging.err());
        var task = wafer("evaluate", "--method", "prompt", "--model", base.toString(), "--data", data.toString(), "--task", "token-classification");
        assertTrue(task.code() == 2 && task.err().contains("--task token-classification is not supported by prompting"), task.err());
        var batch = wafer("evaluate", "--method", "prompt", "--model", base.toString(), "--data", data.toString(), "--batch-size", "4");
        assertTrue(batch.code() == 2 && batch.err().contains("--batch-size does not apply to --method prompt"), batch.err());
        var shots = wafer("evaluate", "--model", base.toString(), "--data", data.toString(), "--shots", "4");
        assertTrue(shots.code() == 2 && shots.err().contains("--shots needs --method prompt"), shots.err());
        var method = wafer("evaluate", "--method", "zero", "--model", base.toString(), "--data", data.toString());
        assertTrue(method.code() == 2 && method.err().contains("--method must be finetuned or prompt"), method.err());
    }
}
