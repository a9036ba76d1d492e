package ai.wafer.tokenizer;

/**
 * GPT-2's byte-to-character alphabet: vocab.json and merges.txt spell every byte as a printable
 * character (so files stay readable and whitespace-free), e.g. the space byte 0x20 is 'Ġ' (U+0120).
 * Printable Latin-1 bytes map to themselves; the other 68 bytes map, in byte order, to U+0100 onwards.
 */
final class ByteAlphabet {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteAlphabet() {}

    /** The bytes a vocabulary string stands for, or null if it has a character outside the alphabet. */
    static byte[] toBytes(String token) {
        byte[] out = new byte[token.length()];
        for (int i = 0; i < out.length; i++) {
            char c = token.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) return null;
            out[i] = (byte) b;
        }
        return out;
    }

    static String toChars(byte[] bytes) {
        char[] cs = new char[bytes.length];
        for (int i = 0; i < cs.length; i++) cs[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(cs);
    }
}
