package ai.wafer.model;

import ai.wafer.tensor.Activation;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The backward listener data parallelism overlaps its all-reduce with: layers are announced top-down, once each,
 * and a layer's gradients are already final when it is announced (nothing later in backward changes them).
 */
class GradientsReadyTest {
    @Test
    void layersAreAnnouncedTopDownWithFinalGradients() {
        GptConfig cfg = new GptConfig(37, 16, 24, 3, 2, 64, Activation.GELU, 1e-5f, true, true, 0.02f, Map.of());
        Gpt m = Gpt.init(cfg, 3);
        int B = 2, T = 8;
        int[] x = new int[B * T], y = new int[B * T];
        Random r = new Random(1);
        for (int i = 0; i < x.length; i++) { x[i] = r.nextInt(37); y[i] = r.nextInt(37); }
        List<Integer> order = new ArrayList<>();
        Map<String, float[]> atAnnouncement = new HashMap<>();
        m.onGradientsReady(l -> {
            order.add(l);
            for (Parameter p : m.parameters()) if (m.layerOf(p) == l) atAnnouncement.put(p.name, p.gradArray().clone());
        });
        m.zeroGrad();
        m.forward(x, y, B, T);
        m.backward();
        assertEquals(List.of(3, 2, 1, 0, -1), order);
        for (Parameter p : m.parameters()) assertArrayEquals(p.gradArray(), atAnnouncement.get(p.name), p.name + " changed after its layer was announced");
    }
}
