package ai.wafer.track;

import ai.wafer.WaferException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.*;

class TensorBoardTest {
    @TempDir Path dir;

    @Test void crc32cAndMaskMatchKnownValues() {
        byte[] check = "123456789".getBytes(StandardCharsets.US_ASCII);
        CRC32C crc = new CRC32C();
        crc.update(check);
        assertEquals(0xE3069283L, crc.getValue());
        // mask(0xE3069283): rotr15 = 0x2507C60D, + 0xA282EAD8 = 0xC78AB0E5 (mod 2^32)
        assertEquals(0xC78AB0E5, TfRecord.maskedCrc32c(check, 0, check.length));
        assertEquals(0xa282ead8, TfRecord.mask(0));
    }

    @Test void fileVersionEventBytesAreExact() {
        byte[] e = TensorBoardWriter.fileVersionEvent(1.5);
        // 0x09 = field 1 fixed64 (wall_time 1.5 = 0x3FF8000000000000 LE), 0x1a = field 3 length-delimited
        byte[] expected = {0x09, 0, 0, 0, 0, 0, 0, (byte) 0xF8, 0x3F, 0x1a, 13,
                'b', 'r', 'a', 'i', 'n', '.', 'E', 'v', 'e', 'n', 't', ':', '2'};
        assertArrayEquals(expected, e);
    }

    @Test void scalarEventBytesAreExact() {
        byte[] e = TensorBoardWriter.scalarEvent(0.0, 300, Map.of("a", 1.0f));
        byte[] expected = {
                0x09, 0, 0, 0, 0, 0, 0, 0, 0,          // wall_time 0.0
                0x10, (byte) 0xAC, 0x02,                // step 300 as varint
                0x2a, 10,                               // summary, 10 bytes
                0x0a, 8,                                //   value, 8 bytes
                0x0a, 1, 'a',                           //     tag "a"
                0x15, 0, 0, (byte) 0x80, 0x3F};         //     simple_value 1.0f (fixed32 LE)
        assertArrayEquals(expected, e);
    }

    @Test void writesFramedRecordsThatReadBack() throws Exception {
        Path file;
        try (TensorBoardWriter w = TensorBoardWriter.create(dir)) {
            file = w.file();
            w.scalar("train/loss", 1, 3.5);
            w.scalar("train/loss", 2, 3.25);
            Map<String, Double> both = new LinkedHashMap<>();
            both.put("train/lr", 1e-4);
            both.put("eval/loss", 3.0);
            w.scalars(2, both);
        }
        assertTrue(file.getFileName().toString().startsWith("events.out.tfevents."));

        List<TensorBoardReader.Event> events = TensorBoardReader.readEvents(file);
        assertEquals(4, events.size());
        assertEquals("brain.Event:2", events.get(0).fileVersion());
        assertTrue(events.get(0).wallTime() > 1.6e9, "wall time in seconds since the epoch");

        List<TensorBoardReader.Scalar> s = TensorBoardReader.readScalars(file);
        assertEquals(4, s.size());
        assertEquals(new TensorBoardReader.Scalar("train/loss", 1, s.get(0).wallTime(), 3.5f), s.get(0));
        assertEquals(3.25f, s.get(1).value());
        assertEquals("train/lr", s.get(2).tag());
        assertEquals(1e-4f, s.get(2).value());
        assertEquals(2, s.get(3).step());

        // framing by hand: length, masked CRC of the length, data, masked CRC of the data
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long len = b.getLong(0);
        assertEquals(TfRecord.maskedCrc32c(bytes, 0, 8), b.getInt(8));
        assertEquals(TfRecord.maskedCrc32c(bytes, 12, (int) len), b.getInt(12 + (int) len));
    }

    @Test void aFlippedByteAnywhereIsDetected() throws Exception {
        Path file;
        try (TensorBoardWriter w = TensorBoardWriter.create(dir)) {
            file = w.file();
            w.scalar("loss", 7, 1.25);
        }
        byte[] good = Files.readAllBytes(file);
        for (int i = 0; i < good.length; i++) {
            byte[] bad = good.clone();
            bad[i] ^= 0x10;
            Path f = dir.resolve("bad");
            Files.write(f, bad);
            assertThrows(WaferException.class, () -> TensorBoardReader.readRecords(f), "flip at byte " + i);
        }
    }

    @Test void aTruncatedFileIsDetected() throws Exception {
        Path file;
        try (TensorBoardWriter w = TensorBoardWriter.create(dir)) {
            file = w.file();
            w.scalar("loss", 7, 1.25);
        }
        byte[] good = Files.readAllBytes(file);
        Path f = dir.resolve("short");
        Files.write(f, java.util.Arrays.copyOf(good, good.length - 3));
        assertThrows(WaferException.class, () -> TensorBoardReader.readRecords(f));
    }

    @Test void twoWritersInTheSameSecondGetDistinctFiles() {
        try (TensorBoardWriter a = TensorBoardWriter.create(dir); TensorBoardWriter b = TensorBoardWriter.create(dir)) {
            assertNotEquals(a.file(), b.file());
        }
    }
}
