package ai.wafer.track;

import ai.wafer.WaferException;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * TFRecord framing, the container of TensorBoard event files. Each record is
 * {@code uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)}, all little-endian.
 * The CRC is "masked" so that CRCs of data that itself contains CRCs stay well distributed.
 */
public final class TfRecord {
    private static final int MASK_DELTA = 0xa282ead8;

    private TfRecord() {}

    /** Masked CRC32C as TensorFlow defines it: rotate right by 15 bits, then add a constant. */
    public static int mask(int crc) {
        return ((crc >>> 15) | (crc << 17)) + MASK_DELTA;
    }

    public static int maskedCrc32c(byte[] data, int off, int len) {
        CRC32C crc = new CRC32C();
        crc.update(data, off, len);
        return mask((int) crc.getValue());
    }

    /** Writes one framed record. */
    public static void write(OutputStream out, byte[] data) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        header.putLong(data.length);
        header.putInt(maskedCrc32c(header.array(), 0, 8));
        ByteBuffer footer = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        footer.putInt(maskedCrc32c(data, 0, data.length));
        out.write(header.array());
        out.write(data);
        out.write(footer.array());
    }

    /**
     * Reads the next record, checking both CRCs; returns null at a clean end of stream.
     * {@code where} names the file for error messages; {@code offset} is the record's byte offset in it.
     */
    public static byte[] read(InputStream in, String where, long offset) throws IOException {
        byte[] header = new byte[12];
        int first = in.readNBytes(header, 0, 12);
        if (first == 0) return null;
        if (first < 12) throw new WaferException(where + ": truncated record header at byte " + offset);
        ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
        long length = h.getLong(0);
        if (h.getInt(8) != maskedCrc32c(header, 0, 8))
            throw new WaferException(where + ": corrupt record length (CRC mismatch) at byte " + offset);
        if (length < 0 || length > Integer.MAX_VALUE - 16)
            throw new WaferException(where + ": implausible record length " + length + " at byte " + offset);
        byte[] data = new byte[(int) length];
        byte[] footer = new byte[4];
        try {
            DataInputStream d = new DataInputStream(in);
            d.readFully(data);
            d.readFully(footer);
        } catch (EOFException e) {
            throw new WaferException(where + ": truncated record at byte " + offset);
        }
        int stored = ByteBuffer.wrap(footer).order(ByteOrder.LITTLE_ENDIAN).getInt();
        if (stored != maskedCrc32c(data, 0, data.length))
            throw new WaferException(where + ": corrupt record data (CRC mismatch) at byte " + offset);
        return data;
    }
}
