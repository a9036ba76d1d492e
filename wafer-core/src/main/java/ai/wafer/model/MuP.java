package ai.wafer.model;

import ai.wafer.WaferException;

/**
 * Maximal update parametrisation as Cerebras trains it and Hugging Face's BTLM code (cerebras/btlm-3b-8k-base,
 * {@code model_type: "btlm"}) computes it; the fields are that config's:
 * <ul>
 *   <li>{@code mup_embeddings_scale}: (wte[token] + wpe[position]) times this, before the first block;</li>
 *   <li>{@code mup_scale_qk_dot_by_d}: attention scores divided by d_head instead of sqrt(d_head);</li>
 *   <li>{@code mup_output_alpha} and {@code mup_width_scale}: logits times alpha * width scale.</li>
 * </ul>
 * The width scale is base width / width (Cerebras' µP checkpoints: base 256, so 0.125 at d 2048). Training follows
 * Cerebras' modelzoo (GPT2LMHeadModel with mup_base_hidden_size): the four matrices of each block start with their
 * std times sqrt(width scale) and learn at the learning rate times the width scale; embeddings, biases and
 * LayerNorms are as without µP. {@link #NONE} is standard parametrisation: every factor 1.
 */
public record MuP(double embeddingsScale, double outputAlpha, double widthScale, boolean scaleQkDotByD) {
    public static final MuP NONE = new MuP(1, 1, 1, false);
    /** Cerebras-GPT's µP embedding multiplier (every released µP config carries 10). */
    public static final double CEREBRAS_EMBEDDINGS_SCALE = 10;

    public MuP {
        if (!(embeddingsScale > 0 && outputAlpha > 0 && widthScale > 0))
            throw new WaferException("config: mup_embeddings_scale, mup_output_alpha and mup_width_scale must be positive, got "
                    + embeddingsScale + ", " + outputAlpha + ", " + widthScale);
    }

    /** Cerebras' recipe for a model of {@code width} tuned at {@code baseWidth}: width scale base / width, scores by d. */
    public static MuP of(int baseWidth, int width, double embeddingsScale, double outputAlpha) {
        if (baseWidth <= 0) throw new WaferException("--mup-base-width must be positive, got " + baseWidth);
        return new MuP(embeddingsScale, outputAlpha, (double) baseWidth / width, true);
    }

    public boolean active() { return !equals(NONE); }

    /** The factor on the logits: output alpha times width scale. */
    public float logitScale() { return (float) (outputAlpha * widthScale); }

    /** The block matrices that µP treats as hidden: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj weights. */
    static boolean hidden(String name) {
        return name.startsWith("h.") && name.endsWith(".weight") && (name.contains(".attn.") || name.contains(".mlp."));
    }

    /** Init std factor of a parameter: sqrt(width scale) for hidden matrices (Cerebras: std / sqrt(d / d_base)). */
    float initScale(String name) { return hidden(name) ? (float) Math.sqrt(widthScale) : 1f; }

    /** Learning-rate multiple of a parameter: the width scale for hidden matrices (Adam's µP: lr * d_base / d). */
    float lrScale(String name) { return hidden(name) ? (float) widthScale : 1f; }
}
