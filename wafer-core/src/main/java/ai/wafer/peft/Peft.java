package ai.wafer.peft;

import ai.wafer.WaferException;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;

import java.util.List;
import java.util.Locale;

/**
 * Which parameters train. Every parameter is either frozen (shared with the base model: no gradient
 * buffer, no optimiser state) or trainable (local). Full fine-tuning trains everything; BitFit the
 * biases; top-k the last k blocks and ln_f; LoRA, (IA)3, prefix tuning and bottleneck adapters freeze
 * the whole base model and train only their own new tensors.
 *
 * <p>Frozen weights cost no heap: every method but full fine-tuning loads the base with
 * {@code Checkpoint.loadFrozen}, which leaves each float32 matrix a read-only memory mapping of the
 * checkpoint file, one page-cache copy shared by every process that maps it (see {@link Parameter}).
 * A weight a method trains (top-k's blocks) is copied to the heap when it is made trainable; full
 * fine-tuning trains everything, so it loads onto the heap ({@code Checkpoint.load}).
 */
public final class Peft {
    private Peft() {}

    public enum Kind {
        FULL, LORA, PREFIX, IA3, ADAPTER, BITFIT, TOP_K;

        public static Kind parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "full" -> FULL;
                case "lora" -> LORA;
                case "prefix" -> PREFIX;
                case "ia3" -> IA3;
                case "adapter" -> ADAPTER;
                case "bitfit" -> BITFIT;
                case "top-k", "topk" -> TOP_K;
                default -> throw new WaferException("unknown method '" + s + "' (full, lora, prefix, ia3, adapter, bitfit, top-k)");
            };
        }

        /** Methods that add tensors of their own and save as an adapter, not as a whole model. */
        public boolean addsTensors() { return this == LORA || this == PREFIX || this == IA3 || this == ADAPTER; }

        public String cliName() { return this == TOP_K ? "top-k" : name().toLowerCase(Locale.ROOT); }
    }

    /** A method and its options (only the ones of its kind matter). */
    public record Spec(Kind kind, Lora.Config lora, int topK, int prefixTokens, int adapterSize) {
        public static Spec of(Kind k) { return new Spec(k, Lora.Config.defaults(), 2, 16, 64); }
    }

    /**
     * Freezes and unfreezes the base model's parameters as {@code spec} says and attaches the method's
     * hooks. Returns the method's own tensors' holder, or null for full, BitFit and top-k.
     */
    public static Method apply(Gpt model, Spec spec, long seed) {
        model.clearHooks();
        int L = model.config.nLayer();
        for (Parameter p : model.parameters()) {
            boolean on = switch (spec.kind()) {
                case FULL -> true;
                case BITFIT -> p.name.endsWith(".bias");
                case TOP_K -> topK(p.name, L, spec.topK());
                default -> false;
            };
            p.setTrainable(on);
        }
        Method m = switch (spec.kind()) {
            case LORA -> new Lora(model, spec.lora(), seed);
            case PREFIX -> new PrefixTuning(model, spec.prefixTokens(), seed);
            case IA3 -> new Ia3(model);
            case ADAPTER -> new Bottleneck(model, spec.adapterSize(), seed);
            default -> null;
        };
        if (m != null) m.attach(model);
        return m;
    }

    private static boolean topK(String name, int L, int k) {
        if (k < 1 || k > L) throw new WaferException("top-k: k must be in [1, " + L + "] for a " + L + "-layer model, got " + k);
        if (name.startsWith("ln_f.")) return true;
        if (!name.startsWith("h.")) return false;
        int layer = Integer.parseInt(name.substring(2, name.indexOf('.', 2)));
        return layer >= L - k;
    }

    /** "trainable 294,912 of 124,734,720 (0.24%)": the trainable share over every parameter, base and new. */
    public static String share(List<Parameter> all) {
        long n = 0, t = 0;
        for (Parameter p : all) {
            n += p.size();
            if (p.trainable()) t += p.size();
        }
        return String.format(Locale.ROOT, "trainable %,d of %,d (%.2f%%)", t, n, 100.0 * t / n);
    }
}
