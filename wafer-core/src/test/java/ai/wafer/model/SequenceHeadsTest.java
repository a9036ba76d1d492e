package ai.wafer.model;

import ai.wafer.model.SequenceClassifier.Problem;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The multi-label and regression heads against PyTorch: Hugging Face's GPT2ForSequenceClassification loss
 * (BCEWithLogitsLoss, MSELoss; means) and its gradients with respect to score.weight and the hidden states, in float64,
 * on rows right- and left-padded (fixtures/seq-heads, made by tools/make_seq_heads.py).
 */
class SequenceHeadsTest {
    static JsonNode cases() throws IOException {
        return new ObjectMapper().readTree(Path.of("wafer-core/src/test/resources/fixtures/seq-heads/cases.json").toFile());
    }

    static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) a.get(i).asDouble();
        return out;
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }

    @ParameterizedTest
    @CsvSource({"multi_label, multi_label_classification", "regression, regression"})
    void matchesPyTorch(String name, String problem) throws IOException {
        JsonNode c = cases().get(name);
        int B = c.get("B").asInt(), T = c.get("T").asInt(), C = c.get("C").asInt(), K = c.get("K").asInt();
        SequenceClassifier head = new SequenceClassifier(C, K, 0.02f, 1, Problem.parse(problem));
        System.arraycopy(floats(c.get("weight")), 0, head.weight.data, head.weight.off, K * C);
        head.weight.zeroGrad();
        float[] hidden = floats(c.get("hidden"));
        double sum = head.loss(hidden, ints(c.get("lengths")), ints(c.get("starts")), null, floats(c.get("targets")), B, T);
        float[] logits = floats(c.get("logits"));
        for (int i = 0; i < B * K; i++) assertEquals(logits[i], head.scores()[i], 1e-5, "logit " + i);
        assertEquals(B * K, head.validTargets());
        assertEquals(c.get("loss").asDouble(), sum / head.validTargets(), 1e-6, "loss");

        float[] dhidden = new float[B * T * C];
        head.backward(dhidden, T, 1f / head.validTargets()); // the gradient of the mean, as PyTorch's
        float[] gw = floats(c.get("grad_weight")), gh = floats(c.get("grad_hidden"));
        for (int i = 0; i < K * C; i++) assertEquals(gw[i], head.weight.grad()[head.weight.off + i], 1e-5, "score.weight grad " + i);
        for (int i = 0; i < B * T * C; i++) assertEquals(gh[i], dhidden[i], 1e-5, "hidden grad " + i);
    }
}
