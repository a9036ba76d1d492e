package ai.wafer.finetune;

import ai.wafer.data.Batcher;
import ai.wafer.data.Example;
import ai.wafer.model.Gpt;
import ai.wafer.model.Head;
import ai.wafer.model.Parameter;
import ai.wafer.model.TokenClassifier;
import ai.wafer.model.SequenceClassifier;
import ai.wafer.model.SequenceClassifier.Problem;
import ai.wafer.model.Task;
import ai.wafer.peft.FineTuned;
import ai.wafer.peft.Fingerprint;
import ai.wafer.peft.Method;
import ai.wafer.peft.Peft;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A GPT model set up for one fine-tuning task: the base model (its parameters frozen or trainable as the
 * method says), the method's own tensors (LoRA, (IA)3, prefix, adapters) hooked into its blocks, and the
 * task's head (token or sequence classification; the tied LM head for causal LM).
 *
 * <p>Batches are padded on either side ({@link Batcher}): right padding needs no mask (a causal token never
 * attends to the padding after it); left padding passes each row's start to the model, which keeps real tokens
 * off the pads and numbers their positions from 0. Padded positions carry label -100 and sequence
 * classification reads the last real token, so both sides give the same losses and predictions.
 *
 * <p>It is a {@link FineTuned}, the model as saved and loaded (the one loader and saver, shared with inference),
 * plus the training passes.
 */
public final class FinetuneModel extends FineTuned {
    public final TokenClassifier tokenHead;
    public final SequenceClassifier seqHead;

    private float[] dhidden = new float[0];
    private int[] shifted = new int[0];
    private int lastT, valid;

    private FinetuneModel(FineTuned ft) {
        super(ft.gpt, ft.task, ft.labels, ft.spec, ft.method, ft.head, ft.padId, ft.baseFingerprint);
        trainedMaxLength = ft.trainedMaxLength;
        columns = ft.columns;
        tokenHead = tokenHead();
        seqHead = seqHead();
    }

    /**
     * Sets {@code base} up for fine-tuning on {@code task} with {@code spec}'s method: freezes what the method
     * does not train, attaches its hooks, and adds a fresh head for {@code labels}.
     */
    public static FinetuneModel create(Gpt base, Task task, List<String> labels, Peft.Spec spec, int padId, long seed) {
        return create(base, task, labels, spec, padId, seed, Problem.SINGLE_LABEL);
    }

    /** As above, a sequence classifier for {@code problem}. */
    public static FinetuneModel create(Gpt base, Task task, List<String> labels, Peft.Spec spec, int padId, long seed, Problem problem) {
        String fp = Fingerprint.of(base);
        Method m = Peft.apply(base, spec, seed);
        List<String> used = task.classifies() ? labels : List.of();
        return new FinetuneModel(new FineTuned(base, task, used, spec, m, Head.create(task, base.config, used, seed ^ 0x5eed, problem), padId, fp));
    }

    /**
     * A whole fine-tuned classifier ({@code model}, with config.json's labels and the head in its weights) set up to
     * train every weight further (full fine-tuning on a next task: continual learning).
     */
    public static FinetuneModel continued(Path model, Task task) {
        FineTuned ft = FineTuned.load(model, null, task);
        Peft.apply(ft.gpt, Peft.Spec.of(Peft.Kind.FULL), 0); // every weight trainable; full fine-tuning has no random state
        return new FinetuneModel(new FineTuned(ft.gpt, ft.task, ft.labels, ft.spec, null, ft.head, ft.padId, Fingerprint.of(ft.gpt)));
    }

    /** Base, method and head parameters, each once: the optimiser takes the trainable ones. */
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(gpt.parameters());
        if (method != null) all.addAll(method.tensors().values());
        all.addAll(headParameters());
        return all;
    }

    /** "trainable 294,912 of 124,734,720 (0.24%)". */
    public String trainableShare() { return Peft.share(parameters()); }

    public void setTraining(boolean on) { if (method != null) method.setTraining(on); }

    /**
     * Forward pass and summed loss of a batch; {@link #validTargets()} says over how many targets.
     * Causal LM shifts the labels: position t predicts label t + 1.
     */
    public double forward(Batcher.Batch b) {
        int B = b.size(), T = b.length(), BT = B * T;
        lastT = T;
        switch (task) {
            case TOKEN_CLASSIFICATION -> {
                float[] hidden = gpt.forwardHidden(b.ids(), b.starts(), B, T);
                double s = tokenHead.loss(hidden, b.labels(), BT);
                valid = tokenHead.validTargets();
                return s;
            }
            case SEQUENCE_CLASSIFICATION -> {
                float[] hidden = gpt.forwardHidden(b.ids(), b.starts(), B, T);
                double s = seqHead.loss(hidden, b.lengths(), b.starts(), b.classes(), b.values(), B, T);
                valid = seqHead.validTargets();
                return s;
            }
            default -> {
                if (shifted.length < BT) shifted = new int[BT];
                for (int r = 0; r < B; r++)
                    for (int t = 0; t < T; t++) shifted[r * T + t] = t + 1 < T ? b.labels()[r * T + t + 1] : Example.IGNORE;
                float mean = gpt.forward(b.ids(), shifted, b.starts(), B, T);
                int v = 0;
                for (int i = 0; i < BT; i++) if (shifted[i] >= 0) v++;
                valid = v;
                return (double) mean * v;
            }
        }
    }

    public int validTargets() { return valid; }

    /** Adds the gradient of scale * (summed loss of the last forward) to every trainable tensor. */
    public void backward(float scale) {
        if (task == Task.CAUSAL_LM) { gpt.backward(scale); return; }
        int C = gpt.config.nEmbd(), BT = gpt.activations().batch() * lastT;
        if (dhidden.length < BT * C) dhidden = new float[BT * C];
        if (tokenHead != null) tokenHead.backward(dhidden, scale);
        else seqHead.backward(dhidden, lastT, scale);
        gpt.backwardHidden(dhidden);
    }

    public void zeroGrad() { for (Parameter p : parameters()) p.zeroGrad(); }

    /** Predictions from the scores the last {@link #forward} left in the head (no second pass over the model). */
    int[] predictFromLastForward(Batcher.Batch b) {
        int B = b.size(), N = tokenHead != null ? B * b.length() : B, K = labels.size();
        int[] out = new int[N];
        TokenClassifier.argmax(tokenHead != null ? tokenHead.scores() : seqHead.scores(), N, K, out);
        return out;
    }

    // ------------------------------------------------------------------ loading

    /**
     * Loads a fine-tuned model for evaluation or further training ({@link FineTuned#load}): {@code model} is either a
     * whole fine-tuned model directory or, with {@code adapter}, the base model the adapter directory was trained on.
     * {@code task} may be null to take the saved one.
     */
    public static FinetuneModel load(Path model, Path adapter, Task task) { return new FinetuneModel(FineTuned.load(model, adapter, task)); }
}
