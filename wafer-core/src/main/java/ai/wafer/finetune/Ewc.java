package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.Batcher;
import ai.wafer.io.SafeTensors;
import ai.wafer.model.Parameter;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Elastic weight consolidation (Kirkpatrick et al., 2017): training on a new task adds
 * {@code lambda/2 * sum_i F_i (w_i - w*_i)^2} to the loss, where w* are the weights after the earlier task (the
 * {@code --model} the run starts from) and F the diagonal empirical Fisher information there, the mean over examples of
 * the squared gradient of each example's loss, saved beside that model as {@link #FILE} ({@link #estimate}).
 */
public final class Ewc {
    public static final String FILE = "fisher.safetensors";

    private final float lambda;
    private final List<Parameter> params;
    private final float[][] fisher, anchor;

    private Ewc(float lambda, List<Parameter> params, float[][] fisher, float[][] anchor) {
        this.lambda = lambda;
        this.params = params;
        this.fisher = fisher;
        this.anchor = anchor;
    }

    /**
     * The penalty for {@code trainable}, anchored at their values now (the model as loaded from {@code model}), with
     * {@code model}'s Fisher file, which must hold a tensor of the same shape for each of them and nothing else.
     */
    public static Ewc load(Path model, float lambda, List<Parameter> trainable) {
        ai.wafer.train.TrainingChecks.require(lambda > 0 && Float.isFinite(lambda), "--ewc", lambda, "a positive number");
        Path file = model.resolve(FILE);
        if (!Files.isRegularFile(file))
            throw new WaferException("--ewc needs the Fisher information of " + model + ": " + file
                    + " is missing (write it when fine-tuning on the earlier task, with --fisher-examples N)");
        float[][] f = new float[trainable.size()][], a = new float[trainable.size()][];
        try (SafeTensors.Reader r = SafeTensors.open(file)) {
            List<String> extra = new ArrayList<>(r.names());
            for (int i = 0; i < f.length; i++) {
                Parameter p = trainable.get(i);
                long[] want = Arrays.stream(p.shape).asLongStream().toArray();
                if (!r.contains(p.name) || !Arrays.equals(r.info(p.name).shape(), want))
                    throw new WaferException(file + ": " + (r.contains(p.name) ? "tensor " + p.name + " has shape "
                            + Arrays.toString(r.info(p.name).shape()) : "no tensor " + p.name) + ", the model's is " + Arrays.toString(want)
                            + " (a Fisher file of another model?)");
                extra.remove(p.name);
                r.read(p.name, f[i] = new float[p.size()], 0);
                a[i] = Arrays.copyOfRange(p.data, p.off, p.off + p.size());
            }
            if (!extra.isEmpty()) throw new WaferException(file + ": tensors that the model does not train: " + extra + " (a Fisher file of another model?)");
        }
        return new Ewc(lambda, List.copyOf(trainable), f, a);
    }

    public float lambda() { return lambda; }

    /** Adds the penalty's gradient {@code lambda F_i (w_i - w*_i)} to every gradient and returns the penalty. */
    public double addGradient() {
        double penalty = 0;
        for (int i = 0; i < fisher.length; i++) {
            Parameter p = params.get(i);
            float[] w = p.data, g = p.grad(), f = fisher[i], a = anchor[i];
            int o = p.off;
            for (int j = 0; j < f.length; j++) {
                float d = w[o + j] - a[j];
                penalty += (double) f[j] * d * d;
                g[o + j] += lambda * f[j] * d;
            }
        }
        return 0.5 * lambda * penalty;
    }

    /**
     * The diagonal empirical Fisher of {@code fm} on {@code n} examples of {@code data} (a sample drawn with {@code seed};
     * all when n is not below their count): for each trainable tensor, the mean over examples of the squared gradient of
     * the example's loss (its mean over the example's targets, as a batch of one trains), by the tensor's name.
     */
    public static Map<String, SafeTensors.Tensor> estimate(FinetuneModel fm, TaskData data, int n, long seed, int maxLength) {
        List<Parameter> trainable = fm.parameters().stream().filter(Parameter::trainable).toList();
        float[][] sum = new float[trainable.size()][];
        for (int i = 0; i < sum.length; i++) sum[i] = new float[trainable.get(i).size()];
        TaskData sample = data.sample(n, seed);
        Batcher one = new Batcher(1, maxLength, fm.padId);
        fm.setTraining(false);
        int used = 0;
        for (int e = 0; e < sample.examples().size(); e++) {
            Batcher.Batch b = one.batch(sample.examples(), new int[] {e});
            fm.zeroGrad();
            fm.forward(b);
            int targets = fm.validTargets();
            if (targets == 0) continue; // nothing to learn from: no gradient
            fm.backward(1f / targets);
            used++;
            for (int i = 0; i < sum.length; i++) {
                Parameter p = trainable.get(i);
                float[] g = p.grad(), s = sum[i];
                for (int j = 0; j < s.length; j++) s[j] += g[p.off + j] * g[p.off + j];
            }
        }
        if (used == 0) throw new WaferException(data.file() + ": no example with a target to estimate the Fisher information on");
        Map<String, SafeTensors.Tensor> out = new LinkedHashMap<>();
        for (int i = 0; i < sum.length; i++) {
            for (int j = 0; j < sum[i].length; j++) sum[i][j] /= used;
            out.put(trainable.get(i).name, new SafeTensors.Tensor(Arrays.stream(trainable.get(i).shape).asLongStream().toArray(), sum[i]));
        }
        return out;
    }
}
