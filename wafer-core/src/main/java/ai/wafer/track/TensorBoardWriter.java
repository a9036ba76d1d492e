package ai.wafer.track;

import ai.wafer.WaferException;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

/**
 * Writes scalars to a TensorBoard event file {@code events.out.tfevents.<secs>.<host>} that
 * {@code tensorboard --logdir} reads. Records are {@code tensorflow.Event} protobufs, encoded here by hand:
 * <pre>
 * Event         { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 * Summary       { repeated Value value = 1; }
 * Summary.Value { string tag = 1; float simple_value = 2; }
 * </pre>
 * (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto). Not thread-safe.
 */
public final class TensorBoardWriter implements Closeable {
    public static final String FILE_VERSION = "brain.Event:2";

    private final Path file;
    private final OutputStream out;

    private TensorBoardWriter(Path file, OutputStream out) {
        this.file = file;
        this.out = out;
    }

    /** Creates a new event file in {@code logDir} (created if needed) and writes its file_version event. */
    public static TensorBoardWriter create(Path logDir) {
        try {
            Files.createDirectories(logDir);
            long secs = System.currentTimeMillis() / 1000;
            String base = "events.out.tfevents." + secs + "." + hostName();
            Path file = logDir.resolve(base);
            // Two writers started in the same second (e.g. a quick resume) must not clobber each other;
            // TensorBoard reads any file whose name contains "tfevents".
            for (int n = 1; Files.exists(file); n++) file = logDir.resolve(base + "." + n);
            OutputStream out = new BufferedOutputStream(Files.newOutputStream(file, StandardOpenOption.CREATE_NEW));
            TensorBoardWriter w = new TensorBoardWriter(file, out);
            w.writeEvent(fileVersionEvent(now()));
            w.flush();
            return w;
        } catch (IOException e) {
            throw new WaferException("cannot create TensorBoard event file in " + logDir + ": " + e.getMessage(), e);
        }
    }

    public Path file() { return file; }

    /** One scalar at a step, e.g. {@code scalar("train/loss", 100, 3.21)}. */
    public void scalar(String tag, long step, double value) {
        writeEvent(scalarEvent(now(), step, Map.of(tag, value)));
    }

    /** Several scalars of the same step in one event. */
    public void scalars(long step, Map<String, ? extends Number> values) {
        writeEvent(scalarEvent(now(), step, values));
    }

    /**
     * A run resumed at {@code step}: a SessionLog START event at step + 1, on which TensorBoard purges the events of
     * steps from step + 1 on that earlier files hold (the abandoned steps the resumed run redoes), as PyTorch's
     * SummaryWriter(purge_step=...) does.
     */
    public void resumedAt(long step) {
        Proto session = new Proto();
        session.varint(1, 1); // status START
        Proto event = new Proto();
        event.fixed64(1, Double.doubleToLongBits(now()));
        event.varint(2, step + 1);
        event.bytes(7, session.toByteArray());
        writeEvent(event.toByteArray());
    }

    public void flush() {
        try {
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    @Override public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + file, e);
        }
    }

    private void writeEvent(byte[] event) {
        try {
            TfRecord.write(out, event);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    private static double now() { return System.currentTimeMillis() / 1000.0; }

    private static String hostName() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = System.getenv().getOrDefault("HOSTNAME", "localhost");
        }
        // the host becomes part of a file name
        return host.replaceAll("[^A-Za-z0-9._-]", "_");
    }

    // ---- protobuf encoding (only what Event needs) ----

    static byte[] fileVersionEvent(double wallTime) {
        Proto p = new Proto();
        p.fixed64(1, Double.doubleToLongBits(wallTime));
        p.bytes(3, FILE_VERSION.getBytes(StandardCharsets.UTF_8));
        return p.toByteArray();
    }

    static byte[] scalarEvent(double wallTime, long step, Map<String, ? extends Number> values) {
        Proto summary = new Proto();
        for (Map.Entry<String, ? extends Number> e : values.entrySet()) {
            Proto value = new Proto();
            value.bytes(1, e.getKey().getBytes(StandardCharsets.UTF_8));
            value.fixed32(2, Float.floatToIntBits(e.getValue().floatValue()));
            summary.bytes(1, value.toByteArray());
        }
        Proto event = new Proto();
        event.fixed64(1, Double.doubleToLongBits(wallTime));
        event.varint(2, step);
        event.bytes(5, summary.toByteArray());
        return event.toByteArray();
    }

    /** Protobuf wire format writer: key = (field << 3) | wire type; varints are little-endian base 128. */
    private static final class Proto {
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream();

        void varint(int field, long v) { key(field, 0); rawVarint(v); }

        void fixed64(int field, long bits) {
            key(field, 1);
            for (int i = 0; i < 8; i++) buf.write((int) (bits >>> (8 * i)));
        }

        void bytes(int field, byte[] b) { key(field, 2); rawVarint(b.length); buf.writeBytes(b); }

        void fixed32(int field, int bits) {
            key(field, 5);
            for (int i = 0; i < 4; i++) buf.write(bits >>> (8 * i));
        }

        private void key(int field, int wireType) { rawVarint(((long) field << 3) | wireType); }

        private void rawVarint(long v) {
            while ((v & ~0x7FL) != 0) {
                buf.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            buf.write((int) v);
        }

        byte[] toByteArray() { return buf.toByteArray(); }
    }
}
