package ai.wafer.peft;

import ai.wafer.model.Gpt;
import ai.wafer.model.Parameter;

import java.util.zip.CRC32C;

/**
 * A cheap identity of a base model's weights: CRC32C over every tensor's name, shape and a strided
 * sample of its values. An adapter records its base's fingerprint, so loading it onto another model
 * of the same shape (where shapes alone would not complain) is caught.
 */
public final class Fingerprint {
    private Fingerprint() {}

    public static String of(Gpt model) {
        CRC32C crc = new CRC32C();
        for (Parameter p : model.parameters()) {
            crc.update(p.name.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            for (int d : p.shape) update(crc, d);
            int stride = Math.max(1, p.size() / 4096);
            for (int i = 0; i < p.size(); i += stride) update(crc, Float.floatToIntBits(p.weights().get(i)));
            // a sample every few pages maps (fault-around) most of a mapped tensor: let it go again, or a model larger
            // than memory would fill the process before weight streaming starts
            if (p.weights().mapping() != null) p.weights().mapping().unload();
        }
        return String.format("%08x", crc.getValue());
    }

    private static void update(CRC32C crc, int v) {
        crc.update(v >>> 24);
        crc.update(v >>> 16);
        crc.update(v >>> 8);
        crc.update(v);
    }
}
