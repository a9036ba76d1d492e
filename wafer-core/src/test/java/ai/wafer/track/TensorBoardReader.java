package ai.wafer.track;

import ai.wafer.WaferException;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads TensorBoard event files written by {@link TensorBoardWriter} (or TensorFlow): checks both CRCs of every
 * record and decodes the Event fields this project uses (wall_time, step, file_version, simple_value scalars).
 * Unknown fields are skipped, so files with images or histograms still read.
 */
public final class TensorBoardReader {
    /** One decoded event: {@code fileVersion} is null except in the header event; {@code scalars} is tag to value. */
    /** sessionStatus: a SessionLog's status (1 START: TensorBoard purges the earlier events of this step on), 0 when none. */
    public record Event(double wallTime, long step, String fileVersion, Map<String, Float> scalars, int sessionStatus) {}

    /** One scalar point, flattened out of an event. */
    public record Scalar(String tag, long step, double wallTime, float value) {}

    private TensorBoardReader() {}

    /** The raw record payloads of a TFRecord file, CRCs verified. */
    public static List<byte[]> readRecords(Path file) {
        List<byte[]> records = new ArrayList<>();
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            long offset = 0;
            byte[] r;
            while ((r = TfRecord.read(in, file.toString(), offset)) != null) {
                records.add(r);
                offset += 16L + r.length; // length, its CRC, the data, its CRC
            }
        } catch (IOException e) {
            throw new WaferException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return records;
    }

    public static List<Event> readEvents(Path file) {
        List<Event> events = new ArrayList<>();
        List<byte[]> records = readRecords(file);
        for (int i = 0; i < records.size(); i++) {
            try {
                events.add(decodeEvent(records.get(i)));
            } catch (RuntimeException e) {
                throw new WaferException(file + ": record " + i + " is not a valid Event: " + e.getMessage(), e);
            }
        }
        return events;
    }

    public static List<Scalar> readScalars(Path file) {
        List<Scalar> out = new ArrayList<>();
        for (Event e : readEvents(file))
            e.scalars().forEach((tag, v) -> out.add(new Scalar(tag, e.step(), e.wallTime(), v)));
        return out;
    }

    static Event decodeEvent(byte[] b) {
        Wire w = new Wire(b, 0, b.length);
        double wallTime = 0;
        long step = 0;
        String fileVersion = null;
        Map<String, Float> scalars = new LinkedHashMap<>();
        int session = 0;
        while (w.more()) {
            long key = w.varint();
            int field = (int) (key >>> 3), type = (int) (key & 7);
            if (field == 7 && type == 2) {
                Wire s = w.sub();
                while (s.more()) { long k = s.varint(); if (k == (1 << 3)) session = (int) s.varint(); else s.skip((int) (k & 7)); }
            }
            else if (field == 1 && type == 1) wallTime = Double.longBitsToDouble(w.fixed64());
            else if (field == 2 && type == 0) step = w.varint();
            else if (field == 3 && type == 2) fileVersion = w.string();
            else if (field == 5 && type == 2) decodeSummary(w.sub(), scalars);
            else w.skip(type);
        }
        return new Event(wallTime, step, fileVersion, Collections.unmodifiableMap(scalars), session);
    }

    private static void decodeSummary(Wire w, Map<String, Float> scalars) {
        while (w.more()) {
            long key = w.varint();
            if (key == ((1 << 3) | 2)) decodeValue(w.sub(), scalars);
            else w.skip((int) (key & 7));
        }
    }

    private static void decodeValue(Wire w, Map<String, Float> scalars) {
        String tag = null;
        Float value = null;
        while (w.more()) {
            long key = w.varint();
            int field = (int) (key >>> 3), type = (int) (key & 7);
            if (field == 1 && type == 2) tag = w.string();
            else if (field == 2 && type == 5) value = Float.intBitsToFloat(w.fixed32());
            else w.skip(type); // images, histograms, tensors: not scalars this reader knows
        }
        if (tag != null && value != null) scalars.put(tag, value);
    }

    /** Protobuf wire format cursor over a byte range. */
    private static final class Wire {
        private final byte[] b;
        private int pos;
        private final int end;

        Wire(byte[] b, int pos, int end) { this.b = b; this.pos = pos; this.end = end; }

        boolean more() { return pos < end; }

        long varint() {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                byte x = next();
                v |= (long) (x & 0x7F) << shift;
                if ((x & 0x80) == 0) return v;
            }
            throw new IllegalStateException("varint too long");
        }

        long fixed64() {
            long v = 0;
            for (int i = 0; i < 8; i++) v |= (long) (next() & 0xFF) << (8 * i);
            return v;
        }

        int fixed32() {
            int v = 0;
            for (int i = 0; i < 4; i++) v |= (next() & 0xFF) << (8 * i);
            return v;
        }

        Wire sub() {
            int len = length();
            Wire w = new Wire(b, pos, pos + len);
            pos += len;
            return w;
        }

        String string() {
            int len = length();
            String s = new String(b, pos, len, StandardCharsets.UTF_8);
            pos += len;
            return s;
        }

        void skip(int wireType) {
            switch (wireType) {
                case 0 -> varint();
                case 1 -> advance(8);
                case 2 -> advance(length());
                case 5 -> advance(4);
                default -> throw new IllegalStateException("unsupported wire type " + wireType);
            }
        }

        private int length() {
            long len = varint();
            if (len < 0 || len > end - pos) throw new IllegalStateException("length " + len + " past end");
            return (int) len;
        }

        private void advance(int n) {
            if (n > end - pos) throw new IllegalStateException("field past end");
            pos += n;
        }

        private byte next() {
            if (pos >= end) throw new IllegalStateException("unexpected end of message");
            return b[pos++];
        }
    }
}
