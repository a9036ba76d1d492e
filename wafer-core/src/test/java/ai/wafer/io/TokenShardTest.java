package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.testutil.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static ai.wafer.io.SafeTensorsTest.assertError;
import static org.junit.jupiter.api.Assertions.*;

class TokenShardTest {
    @TempDir Path tmp;

    @Test void readsGptTinyTokens() {
        Path f = Fixtures.fixture("gpt-tiny").resolve("tokens.bin");
        try (TokenShard s = TokenShard.open(f)) {
            assertEquals(400, s.size());
            // First and last ids cross-checked with numpy.
            assertArrayEquals(new int[]{95, 63, 69, 90, 58}, s.read(0, 5));
            assertArrayEquals(new int[]{94, 86, 54}, s.read(397, 3));
            int[] all = s.read(0, 400);
            assertEquals(100, Arrays.stream(all).max().orElseThrow());
            assertEquals(all[123], s.get(123));
            assertThrows(IndexOutOfBoundsException.class, () -> s.get(400));
            assertThrows(IndexOutOfBoundsException.class, () -> s.read(399, 2));
        }
    }

    @Test void readsLocalFixtureTokens() {
        Path f = Fixtures.fixture("gpt-odd").resolve("tokens.bin");
        try (TokenShard s = TokenShard.open(f)) {
            assertEquals(300, s.size());
            assertTrue(Arrays.stream(s.read(0, 300)).allMatch(t -> t >= 0 && t < 77));
        }
    }

    @Test void roundTripIncludingFullUint16Range() throws IOException {
        int[] toks = {0, 1, 255, 256, 32767, 32768, 50256, 65535};
        Path f = tmp.resolve("t.bin");
        TokenShard.write(f, toks);
        assertEquals(1024 + 2 * toks.length, Files.size(f));
        ByteBuffer head = ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(20240520, head.getInt(0));
        assertEquals(1, head.getInt(4));
        assertEquals(toks.length, head.getInt(8));
        for (int i = 12; i < 1024; i++) assertEquals(0, head.get(i), "header byte " + i);
        try (TokenShard s = TokenShard.open(f)) {
            assertArrayEquals(toks, s.read(0, toks.length));
            int[] dst = new int[12];
            s.read(5, dst, 4, 3);
            assertArrayEquals(new int[]{0, 0, 0, 0, 32768, 50256, 65535, 0, 0, 0, 0, 0}, dst);
        }
    }

    @Test void streamingWriterPatchesHeaderAtClose() {
        Path f = tmp.resolve("stream.bin");
        int n = 100_003; // more than one internal buffer
        try (TokenShard.Writer w = TokenShard.writer(f)) {
            for (int i = 0; i < n; i++) w.append(i % 50257);
            assertFalse(Files.exists(f), "only a temp file until close");
            assertEquals(n, w.count());
        }
        try (TokenShard s = TokenShard.open(f)) {
            assertEquals(n, s.size());
            for (int i = 0; i < n; i += 997) assertEquals(i % 50257, s.get(i));
            assertEquals((n - 1) % 50257, s.get(n - 1));
        }
        // An empty shard is valid.
        TokenShard.write(tmp.resolve("empty.bin"), new int[0]);
        try (TokenShard s = TokenShard.open(tmp.resolve("empty.bin"))) {
            assertEquals(0, s.size());
        }
    }

    @Test void rejectsTokensOutsideUint16() {
        Path f = tmp.resolve("big.bin");
        assertError(() -> TokenShard.write(f, new int[]{1, 2, 65536}), "big.bin", "token id 65536 at position 2", "uint16");
        assertFalse(Files.exists(f), "no shard left behind");
        assertFalse(Files.exists(tmp.resolve("big.bin.tmp")), "no temp file left behind");
        assertError(() -> TokenShard.write(f, new int[]{-1}), "token id -1 at position 0");
    }

    @Test void validationErrors() throws IOException {
        Path f = tmp.resolve("x.bin");
        assertError(() -> TokenShard.open(tmp.resolve("none.bin")), "none.bin", "no such file");

        Files.write(f, new byte[100]);
        assertError(() -> TokenShard.open(f), "x.bin", "only 100 bytes");

        ByteBuffer b = ByteBuffer.allocate(1024 + 10).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, 12345).putInt(4, 1).putInt(8, 5);
        Files.write(f, b.array());
        assertError(() -> TokenShard.open(f), "x.bin", "bad magic 12345");

        b.putInt(0, 20240520).putInt(4, 2);
        Files.write(f, b.array());
        assertError(() -> TokenShard.open(f), "x.bin", "version 2");

        b.putInt(4, 1).putInt(8, 7);
        Files.write(f, b.array());
        assertError(() -> TokenShard.open(f), "x.bin", "header says 7 tokens (1038 bytes) but the file has 1034 bytes");

        b.putInt(8, 5);
        Files.write(f, b.array());
        try (TokenShard s = TokenShard.open(f)) {
            assertEquals(5, s.size());
        }
    }
}
