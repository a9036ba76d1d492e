package ai.wafer.peft;

import ai.wafer.WaferException;
import ai.wafer.model.BlockHooks;
import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;

import java.util.List;

/**
 * Many adapters on one frozen base, unmerged, each batch row with its own: the base's hooks are routers that, for
 * the B rows of a forward pass (T positions each, so row b is rows [b*T, (b+1)*T) of the hook's B*T), apply row b's
 * adapter to that block of rows only (LoRA's low-rank update, (IA)3's scalings) and leave a row with none (null) as
 * the base computes it. A row's block is computed alone, whatever else is in the batch, so a sequence gets the same
 * numbers in a mixed batch as on its own. Prefix tuning (virtual positions in the attention) and bottleneck adapters
 * (layers of their own) are refused: serve them alone, merged or attached.
 *
 * <p>Not thread safe: {@link #select} and the forward pass that follows it run under one lock (the caller's).
 */
public final class MixedAdapters {
    /** One adapter's pieces by layer, ready to be selected for rows; the base is untouched by it. */
    public static final class Adapter {
        public final FineTuned ft;
        private final LoraLinear[][] lora;
        private final Ia3 ia3;

        private Adapter(FineTuned ft, LoraLinear[][] lora, Ia3 ia3) {
            this.ft = ft;
            this.lora = lora;
            this.ia3 = ia3;
        }
    }

    private Adapter[] rows = new Adapter[1];
    private int B = 1;

    /** Installs the routers on every block of {@code base} (which must then carry no other hooks). */
    public MixedAdapters(Gpt base) {
        for (int l = 0; l < base.config.nLayer(); l++) {
            BlockHooks k = base.hooks(l);
            if (!k.isEmpty()) throw new IllegalStateException("layer " + l + " has hooks already");
            k.cAttn = new Linear(l, 0);
            k.attnProj = new Linear(l, 1);
            k.cFc = new Linear(l, 2);
            k.mlpProj = new Linear(l, 3);
            k.qkvScale = new Scale(l, true);
            k.mlpAct = new Scale(l, false);
        }
    }

    /**
     * {@code ft} (loaded onto this base, not attached: {@link FineTuned#onBase}) as an adapter to select; refuses by
     * name the methods that cannot be applied row by row.
     */
    public static Adapter adapter(FineTuned ft, String where) {
        for (var p : ft.method == null ? List.<Parameter>of() : ft.method.tensors().values()) p.setTrainable(false); // served, not trained: no gradient buffers
        for (Parameter p : ft.headParameters()) p.setTrainable(false);
        return switch (ft.method) {
            case Lora l -> new Adapter(ft, l.layers, null);
            case Ia3 i -> new Adapter(ft, null, i);
            case null -> throw new WaferException(where + ": not an adapter (a whole fine-tuned model); several adapters share one base");
            default -> throw new WaferException(where + ": a " + ft.spec.kind().cliName() + " adapter cannot be mixed with others in a batch "
                    + "(LoRA and (IA)3 can); serve it alone (--adapter DIR)");
        };
    }

    /** The next forward pass has {@code B} rows, row b with adapter {@code rows[b]} (null, or rows null: the base alone). */
    public void select(Adapter[] rows, int B) {
        if (this.rows.length < B) this.rows = new Adapter[B];
        if (rows == null) java.util.Arrays.fill(this.rows, 0, B, null);
        else System.arraycopy(rows, 0, this.rows, 0, B);
        this.B = B;
    }

    /** LoRA's update of one of the four linears ({@link Lora#TARGETS} index t) of layer l, by row. */
    private final class Linear implements BlockHooks.LinearAdapter {
        private final int l, t;

        Linear(int l, int t) { this.l = l; this.t = t; }

        @Override public void forward(float[] out, float[] inp, int N) {
            int T = N / B;
            for (int b = 0; b < B; b++) {
                Adapter a = rows[b];
                LoraLinear ll = a == null || a.lora == null ? null : a.lora[l][t];
                if (ll != null) ll.delta(out, inp, b * T, T);
            }
        }

        @Override public void backward(float[] dinp, float[] dout, float[] inp, int N) { throw new UnsupportedOperationException("mixed adapters serve; they do not train"); }
    }

    /** (IA)3's scaling of the keys and values (kv) or of the MLP activation, by row. */
    private final class Scale implements BlockHooks.InPlace {
        private final int l;
        private final boolean kv;

        Scale(int l, boolean kv) { this.l = l; this.kv = kv; }

        @Override public void forward(float[] x, int N) {
            int T = N / B;
            for (int b = 0; b < B; b++) {
                Adapter a = rows[b];
                if (a != null && a.ia3 != null) (kv ? a.ia3.kv : a.ia3.ff)[l].scale(x, b * T, T);
            }
        }

        @Override public void backward(float[] dx, float[] dout, int N) { throw new UnsupportedOperationException("mixed adapters serve; they do not train"); }
    }
}
