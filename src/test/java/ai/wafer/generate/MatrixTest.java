package ai.wafer.generate;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link Matrix#mul} against a double-precision dot product of the same (bf16-rounded) weights: every weight
 * meets its own input, whatever the packing (pairs in an int, evens/odds split), on odd and even shapes, full
 * and partial tiles, one to three input rows.
 */
class MatrixTest {
    @Test
    void mulMatchesADoubleDotProduct() {
        Random r = new Random(7);
        for (WeightType type : WeightType.values()) {
            for (int cols : new int[] {1, 6, 31, 32, 33, 64, 100, 768}) {
                for (int rows : new int[] {1, 5, 8, 13}) {
                    for (int n = 1; n <= 3; n++) {
                        float[] w = new float[rows * cols], x = new float[n * cols], bias = new float[rows];
                        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
                        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                        for (int i = 0; i < rows; i++) bias[i] = (float) r.nextGaussian();
                        Matrix m = Matrix.ofRows(w, rows, cols, type);
                        float[] out = new float[n * rows];
                        m.mul(out, x, n, bias);
                        for (int i = 0; i < n; i++) {
                            for (int o = 0; o < rows; o++) {
                                double want = bias[o];
                                for (int c = 0; c < cols; c++) {
                                    float wv = type == WeightType.F32 ? w[o * cols + c] : Matrix.fromBf16(Matrix.toBf16(w[o * cols + c]));
                                    want += (double) wv * x[i * cols + c];
                                }
                                assertEquals(want, out[i * rows + o], 1e-4 * (1 + Math.sqrt(cols)),
                                        type + " rows " + rows + " cols " + cols + " n " + n + " at [" + i + "," + o + "]");
                            }
                        }
                        // the prefill path (GEMM over widened weights) agrees too
                        float[] g = new float[n * rows];
                        m.gemm(g, x, n, bias, new float[rows * cols]);
                        for (int i = 0; i < g.length; i++) assertEquals(out[i], g[i], 1e-4 * (1 + Math.sqrt(cols)), type + " gemm " + rows + "x" + cols);
                    }
                }
            }
        }
    }
}
