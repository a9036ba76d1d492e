package ai.wafer.testutil;

import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Central finite differences of a scalar loss against an analytic gradient: the check every backward pass gets. */
public final class FiniteDifference {
    private FiniteDifference() {}

    /**
     * Compares analytic[i] with (L(x+h) - L(x-h)) / 2h for every {@code stride}-th element of x, relative to the
     * larger of |numeric| and 5% of the gradient's largest magnitude. With {@code nanMeansUnchecked}, NaN in {@code analytic} marks an
     * element the caller does not check; otherwise a NaN fails. Fails if the gradient is identically zero (the check would prove nothing).
     */
    public static void check(String what, float[] x, float[] analytic, DoubleSupplier loss, double h, double tol, int stride,
                             boolean nanMeansUnchecked) {
        double maxAbs = 0;
        for (float g : analytic) if (!Float.isNaN(g)) maxAbs = Math.max(maxAbs, Math.abs(g));
        for (int i = 0; i < x.length; i += stride) {
            if (nanMeansUnchecked && Float.isNaN(analytic[i])) continue;
            float keep = x[i];
            x[i] = (float) (keep + h);
            double up = loss.getAsDouble();
            x[i] = (float) (keep - h);
            double down = loss.getAsDouble();
            x[i] = keep;
            double numeric = (up - down) / (2 * h);
            double err = Math.abs(numeric - analytic[i]) / Math.max(Math.abs(numeric), 0.05 * maxAbs + 1e-6);
            if (!(err <= tol)) fail(what + "[" + i + "]: analytic " + analytic[i] + " numeric " + numeric + " (rel err " + err + ")");
        }
        assertTrue(maxAbs > 0, what + ": gradient is identically zero, the check would be vacuous");
    }
}
