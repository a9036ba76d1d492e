package ai.wafer.tensor;

import ai.wafer.model.FlatStore;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.train.AdamW;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --precision bf16}: the products against a float64 product of the bf16-rounded inputs, on both paths (oneDNN
 * where this machine has it and bf16 instructions, else the OpenBLAS fallback; and the Java fallback), and a short
 * training run against float32.
 */
class Bf16GemmTest {
    @AfterEach
    void reset() {
        Precision.select(Precision.fp32);
        Gemm.setImpl(null);
    }

    private static float bf(float v) { return Bf16Weights.fromBf16(Bf16Weights.toBf16(v)); }

    @Test
    void roundingIsNearestEvenAsTheScalarOne() {
        Random r = new Random(1);
        float[] v = new float[100];
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian() * (float) Math.pow(10, r.nextInt(20) - 10);
        // ties (to even, both ways), a value that rounds up into infinity, infinities, NaN, signed zero, a subnormal
        float[] special = {1f + 0x1p-8f, 1f + 3 * 0x1p-8f, -(1f + 0x1p-8f), Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN, Float.intBitsToFloat(0x7f800001), -0f, Float.MIN_VALUE};
        System.arraycopy(special, 0, v, 3, special.length);
        short[] bits = new short[v.length];
        float[] vals = new float[v.length];
        Bf16Weights.round(v, 0, bits, 0, v.length);
        Bf16Kernels.round(v, 0, vals, 0, v.length);
        for (int i = 0; i < v.length; i++) {
            if (Float.isNaN(v[i])) {
                assertTrue(Float.isNaN(Bf16Weights.fromBf16(bits[i])) && Float.isNaN(vals[i]), "NaN stays NaN at " + i);
                continue;
            }
            assertEquals(Bf16Weights.toBf16(v[i]), bits[i], "bits of " + v[i]);
            assertEquals(Float.floatToIntBits(bf(v[i])), Float.floatToIntBits(vals[i]), "value of " + v[i]);
        }
        assertEquals(1f, bf(1f + 0x1p-8f)); // the tie goes down to the even 1.0
        assertEquals(1f + 4 * 0x1p-8f, bf(1f + 3 * 0x1p-8f)); // and up to the even 1 + 2^-6
        assertEquals(Float.POSITIVE_INFINITY, bf(Float.MAX_VALUE));
    }

    @Test
    void productIsTheBf16InputsProductAccumulatedInFloat32() {
        Precision.select(Precision.bf16);
        Random r = new Random(2);
        for (Gemm.Impl impl : Gemm.Impl.values()) {
            Gemm.setImpl(impl);
            for (int t = 0; t < 4; t++) {
                boolean ta = (t & 1) != 0, tb = (t & 2) != 0;
                int M = 37, N = 53, K = 300, lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2, aOff = 7, bOff = 11, cOff = 4;
                float[] A = gauss(r, aOff + (ta ? K : M) * lda), B = gauss(r, bOff + (tb ? N : K) * ldb), C = gauss(r, cOff + M * ldc);
                float[] c0 = C.clone();
                float alpha = 0.75f, beta = 0.5f;
                String what = Kernels.current().getClass().getSimpleName() + " over " + impl + " ta=" + ta + " tb=" + tb;
                // two cases through matmul: a float32 heap weight, and a bf16 one (read through its storage)
                if (t >= 2) Kernels.current().matmul(ta, tb, M, N, K, alpha, A, aOff, lda, t == 2 ? Weights.of(B) : Bf16Weights.of(B), bOff, ldb, beta, C, cOff, ldc);
                else Kernels.current().sgemm(ta, tb, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
                double maxUnrounded = 0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double exact = 0, abs = 0, unrounded = 0;
                        for (int k = 0; k < K; k++) {
                            float a = A[aOff + (ta ? k * lda + i : i * lda + k)], b = B[bOff + (tb ? j * ldb + k : k * ldb + j)];
                            exact += (double) bf(a) * bf(b);
                            unrounded += (double) a * b;
                            abs += Math.abs((double) bf(a) * bf(b));
                        }
                        double ref = alpha * exact + beta * c0[cOff + i * ldc + j], got = C[cOff + i * ldc + j];
                        // float32 accumulation of K exact products: at most about K * 2^-24 of the sum of magnitudes
                        assertEquals(ref, got, K * 0x1p-24 * alpha * abs + 1e-6 * Math.abs(ref), what + " at " + i + "," + j);
                        maxUnrounded = Math.max(maxUnrounded, Math.abs(alpha * unrounded + beta * c0[cOff + i * ldc + j] - got));
                    }
                assertTrue(maxUnrounded > 1e-3, what + ": the inputs were not rounded to bf16 (" + maxUnrounded + ")");
                for (int i = 0; i < cOff; i++) assertEquals(c0[i], C[i], "C before its offset untouched");
                for (int i = 0; i < M; i++) assertEquals(c0[cOff + i * ldc + N], C[cOff + i * ldc + N], "C's row padding untouched");
            }
        }
    }

    /**
     * The backward of a product, both layouts of W (a Conv1D [K, N] and the LM head's [N, K]): the input gradient and
     * the weight gradient against float64 products of the bf16-rounded operands, and bit for bit the two products
     * called one by one (the default of the seam), which round dout twice.
     */
    @Test
    void backwardProductsRoundDoutOnceAndMatchTheSeparateProducts() {
        Precision.select(Precision.bf16);
        Random r = new Random(3);
        for (Gemm.Impl impl : Gemm.Impl.values()) {
            Gemm.setImpl(impl);
            Kernels k = Kernels.current();
            for (int variant = 0; variant < 4; variant++) {
                boolean transW = (variant & 1) != 0, gAcc = (variant & 2) != 0; // gAcc false: a gradient still zero this step
                int M = 45, N = 70, K = 33, ldw = transW ? K : N;
                float alpha = 0.5f;
                float[] dout = gauss(r, M * N), inp = gauss(r, M * K), w = gauss(r, (transW ? N : K) * ldw);
                float[] dinp = gauss(r, M * K), g = gauss(r, 3 + w.length), dinp0 = dinp.clone(), g0 = g.clone();
                k.matmulBackward(transW, M, N, K, alpha, dout, inp, Weights.of(w), 0, ldw, dinp, true, g, 3, gAcc);
                float[] dinp2 = dinp0.clone(), g2 = g0.clone();
                k.matmul(false, !transW, M, K, N, alpha, dout, 0, N, Weights.of(w), 0, ldw, 1f, dinp2, 0, K);
                if (transW) k.sgemm(true, false, N, K, M, alpha, dout, 0, N, inp, 0, K, gAcc ? 1f : 0f, g2, 3, ldw);
                else k.sgemm(true, false, K, N, M, alpha, inp, 0, K, dout, 0, N, gAcc ? 1f : 0f, g2, 3, ldw);
                String what = k.getClass().getSimpleName() + " over " + impl + " transW=" + transW + " gAccumulate=" + gAcc;
                for (int i = 0; i < dinp.length; i++) assertEquals(Float.floatToIntBits(dinp2[i]), Float.floatToIntBits(dinp[i]), what + " dinp " + i);
                for (int i = 0; i < g.length; i++) assertEquals(Float.floatToIntBits(g2[i]), Float.floatToIntBits(g[i]), what + " gW " + i);
                for (int i = 0; i < M; i++)
                    for (int c = 0; c < K; c++) { // dinp[i, c] += alpha * sum_j dout[i, j] op(W)[c, j]
                        double s = 0, abs = 0;
                        for (int j = 0; j < N; j++) {
                            double p = (double) bf(dout[i * N + j]) * bf(transW ? w[j * ldw + c] : w[c * ldw + j]);
                            s += p;
                            abs += Math.abs(p);
                        }
                        assertEquals(dinp0[i * K + c] + alpha * s, dinp[i * K + c], N * 0x1p-23 * abs + 1e-5, what + " dinp at " + i + "," + c);
                    }
                for (int c = 0; c < K; c++)
                    for (int j = 0; j < N; j++) { // dW[c, j] (stored [j, c] when transW) += alpha * sum_i inp[i, c] dout[i, j]
                        double s = 0, abs = 0;
                        for (int i = 0; i < M; i++) {
                            double p = (double) bf(inp[i * K + c]) * bf(dout[i * N + j]);
                            s += p;
                            abs += Math.abs(p);
                        }
                        int at = 3 + (transW ? j * ldw + c : c * ldw + j);
                        assertEquals((gAcc ? g0[at] : 0) + alpha * s, g[at], M * 0x1p-23 * abs + 1e-5, what + " gW at " + c + "," + j);
                    }
                assertEquals(g0[0], g[0], "the gradient before its offset untouched");
            }
        }
    }

    /** Training in bf16 follows float32's loss curve: 40 AdamW steps of a small model on a repeating token pattern. */
    @Test
    void trainingInBf16FollowsFloat32() {
        float[] fp32 = train(Precision.fp32), bf16 = train(Precision.bf16);
        assertTrue(fp32[fp32.length - 1] < 0.5f * fp32[0], "float32 learns: " + fp32[0] + " -> " + fp32[fp32.length - 1]);
        for (int s = 0; s < fp32.length; s++)
            assertEquals(fp32[s], bf16[s], 0.02 * fp32[s] + 0.02, "step " + s + " loss (" + Precision.select(Precision.bf16) + ")");
        assertTrue(bf16[0] != fp32[0], "the bf16 run ran its products in bf16");
    }

    /**
     * A pass rounds each float32 weight once for its forward and backward; after an optimizer step the next pass
     * rounds the new values: its gradients are those of a fresh model holding them.
     */
    @Test
    void aPassAfterAnOptimizerStepUsesTheNewWeights() {
        Precision.select(Precision.bf16);
        try {
            GptConfig cfg = GptConfig.of(2, 64, 4, 97, 32);
            Gpt a = Gpt.init(cfg, 5), b = Gpt.init(cfg, 6);
            FlatStore.of(a.parameters());
            FlatStore.of(b.parameters());
            AdamW opt = new AdamW(a.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
            int B = 2, T = 32;
            int[] x = new int[B * T], y = new int[B * T];
            for (int i = 0; i < B * T; i++) { x[i] = i * 5 % 97; y[i] = (i * 5 + 3) % 97; }
            a.zeroGrad();
            a.forward(x, y, B, T);
            a.backward();
            opt.step(1e-2f, 1f);
            a.zeroGrad();
            float la = a.forward(x, y, B, T);
            a.backward();
            for (int i = 0; i < a.parameters().size(); i++) {
                var pa = a.parameters().get(i);
                var pb = b.parameters().get(i);
                System.arraycopy(pa.data, pa.off, pb.data, pb.off, pa.size());
            }
            b.zeroGrad();
            float lb = b.forward(x, y, B, T);
            b.backward();
            assertEquals(lb, la, "loss after the step");
            for (int i = 0; i < a.parameters().size(); i++) {
                var pa = a.parameters().get(i);
                var pb = b.parameters().get(i);
                for (int j = 0; j < pa.size(); j++)
                    assertEquals(pb.grad()[pb.off + j], pa.grad()[pa.off + j], pa.name + " gradient at " + j);
            }
        } finally {
            Precision.select(Precision.fp32);
        }
    }

    private static float[] train(Precision p) {
        Precision.select(p);
        GptConfig cfg = GptConfig.of(2, 64, 4, 97, 32);
        Gpt model = Gpt.init(cfg, 5);
        FlatStore.of(model.parameters());
        AdamW opt = new AdamW(model.parameters(), new AdamW.Hyper(0.9f, 0.95f, 1e-8f, 0.1f));
        int B = 4, T = 32;
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) {
            x[i] = (i * 7 + i / 13) % 97;
            y[i] = ((i + 1) * 7 + (i + 1) / 13) % 97;
        }
        float[] loss = new float[40];
        for (int s = 0; s < loss.length; s++) {
            model.zeroGrad();
            loss[s] = model.forward(x, y, B, T);
            model.backward();
            opt.step(3e-3f, 1f);
        }
        return loss;
    }

    private static float[] gauss(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
