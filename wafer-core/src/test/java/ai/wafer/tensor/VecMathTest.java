package ai.wafer.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VecMathTest {
    @Test
    void floatExpMatchesMathExp() {
        var S = FloatVector.SPECIES_PREFERRED;
        float[] x = new float[S.length()], y = new float[S.length()];
        double worst = 0;
        for (double v = -87; v < 88.5; v += 0.0137) {
            for (int i = 0; i < x.length; i++) x[i] = (float) (v + i * 0.001);
            VecMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i] / Math.exp(x[i]) - 1));
        }
        assertTrue(worst < 3e-7, "relative error " + worst);
        java.util.Arrays.fill(x, -200f);
        VecMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        java.util.Arrays.fill(x, 0f);
        VecMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertEquals(1f, y[0]);
    }

    @Test
    void doubleExpMatchesMathExp() {
        var S = DoubleVector.SPECIES_PREFERRED;
        double[] x = new double[S.length()], y = new double[S.length()];
        double worst = 0;
        for (double v = -700; v < 700; v += 0.731) {
            for (int i = 0; i < x.length; i++) x[i] = v + i * 0.01;
            VecMath.exp(DoubleVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i] / Math.exp(x[i]) - 1));
        }
        assertTrue(worst < 1e-14, "relative error " + worst);
        java.util.Arrays.fill(x, -1000);
        VecMath.exp(DoubleVector.fromArray(S, x, 0)).intoArray(y, 0);
        assertEquals(0.0, y[0]);
    }
}
