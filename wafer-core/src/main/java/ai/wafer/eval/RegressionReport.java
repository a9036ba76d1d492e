package ai.wafer.eval;

import java.util.LinkedHashMap;
import java.util.Map;

/** A regression model's scores: mean squared error, mean absolute error and Pearson's r over n items. */
public record RegressionReport(long n, double mse, double mae, double pearson) {
    /** Scores {@code pred} against {@code gold}; r is NaN when either has no variance (as scipy's pearsonr). */
    public static RegressionReport of(double[] gold, double[] pred) {
        int n = gold.length;
        double se = 0, ae = 0, mg = 0, mp = 0;
        for (int i = 0; i < n; i++) {
            double d = pred[i] - gold[i];
            se += d * d;
            ae += Math.abs(d);
            mg += gold[i];
            mp += pred[i];
        }
        mg /= n;
        mp /= n;
        double sgp = 0, sgg = 0, spp = 0;
        for (int i = 0; i < n; i++) {
            double g = gold[i] - mg, p = pred[i] - mp;
            sgp += g * p;
            sgg += g * g;
            spp += p * p;
        }
        return new RegressionReport(n, se / n, ae / n, sgp / Math.sqrt(sgg * spp));
    }

    public String toText(int digits) {
        String f = "%-8s %." + digits + "f%n";
        return String.format(f, "mse", mse) + String.format(f, "mae", mae) + String.format(f, "pearson", pearson)
                + String.format("%-8s %d%n", "n", n);
    }

    /** The keys of {@code wafer evaluate --format json}; an undefined r is null (JSON has no NaN). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("mse", mse);
        m.put("mae", mae);
        m.put("pearson", Double.isNaN(pearson) ? null : pearson);
        m.put("n", n);
        return m;
    }
}
