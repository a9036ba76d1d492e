package ai.wafer.peft;

import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Map;

/**
 * A parameter-efficient fine-tuning method: new trainable tensors attached to a frozen model through
 * its {@link ai.wafer.model.BlockHooks}. Its tensors save and load under PEFT's key names.
 */
public interface Method {
    /** PEFT's {@code peft_type} (LORA, IA3, PREFIX_TUNING) or Wafer's own for methods PEFT lacks. */
    String peftType();

    /** The method's own tensors, by the key they have in adapter_model.safetensors (PEFT's names). */
    Map<String, Parameter> tensors();

    /** adapter_config.json without the task and base-model fields, which the caller adds. */
    ObjectNode config();

    /** Hooks the method into the model's blocks. */
    void attach(Gpt model);

    /**
     * Called before each training micro-batch with the first token row this process computes of it (0 in one process;
     * a data-parallel rank's offset in the global micro-batch), so random masks (LoRA dropout) are those the
     * one-process run draws for the same rows, and every rank's random stream advances in step.
     */
    default void beginMicroBatch(long tokenRowsBefore) {}

    /**
     * Where the method's random streams stand (LoRA: the mask seeds each layer has drawn), for a training checkpoint;
     * empty when it draws nothing. {@link #skipRandom} brings a freshly created method (same seed) to the same place.
     */
    default long[] randomState() { return new long[0]; }

    default void skipRandom(long[] state) {
        if (state.length != 0) throw new IllegalArgumentException("this method has no random stream to restore");
    }

    /** Training mode turns dropout on (LoRA); evaluation turns it off. */
    default void setTraining(boolean on) {}

    /** Key of a model tensor in PEFT's adapter files: {@code base_model.model.transformer.h.0.attn.c_attn}. */
    static String key(String modelName) { return "base_model.model.transformer." + modelName; }
}
