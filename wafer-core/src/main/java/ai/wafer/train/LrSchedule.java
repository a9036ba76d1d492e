package ai.wafer.train;

import ai.wafer.WaferException;

/**
 * Learning rate per step: linear warmup from 0 to the peak over {@code warmup} steps, then
 * constant, or a linear or cosine decay to {@code minRatio * peak} at the last step
 * (Cerebras-GPT decays linearly to 10% of the peak).
 */
public record LrSchedule(Kind kind, float peak, int warmup, int totalSteps, float minRatio) {
    public enum Kind { CONSTANT, LINEAR, COSINE }

    public LrSchedule {
        TrainingChecks.require(peak >= 0 && Float.isFinite(peak), "--lr", peak, "a finite number >= 0");
        TrainingChecks.require(warmup >= 0, "--warmup-steps", warmup, ">= 0");
        TrainingChecks.ratio(minRatio, "--min-lr-ratio");
    }

    public static Kind parse(String s) {
        return switch (s.toLowerCase()) {
            case "constant" -> Kind.CONSTANT;
            case "linear" -> Kind.LINEAR;
            case "cosine" -> Kind.COSINE;
            default -> throw new WaferException("unknown schedule '" + s + "' (constant, linear, cosine)");
        };
    }

    /** The rate for step {@code s}, counted from 0. */
    public float at(int s) {
        if (s < warmup) return peak * (s + 1) / warmup;
        if (kind == Kind.CONSTANT) return peak;
        int decaySteps = Math.max(1, totalSteps - warmup - 1);
        double frac = Math.min(1.0, (double) (s - warmup) / decaySteps);
        double shape = kind == Kind.LINEAR ? 1 - frac : 0.5 * (1 + Math.cos(Math.PI * frac));
        return (float) (peak * (minRatio + (1 - minRatio) * shape));
    }
}
