package ai.wafer.generate;

import ai.wafer.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Turns generated tokens into text as they come: bytes of a character split across tokens are held
 * until complete, and text that could be the start of a stop string is held until it is known not
 * to be one. When a stop string appears, the text ends just before it.
 */
public final class TextStream {
    private final Tokenizer tok;
    private final List<String> stops;
    private byte[] pending = new byte[16];
    private int pendingLen;
    private final StringBuilder text = new StringBuilder();
    private int emitted;
    private boolean stopped;

    public TextStream(Tokenizer tok, List<String> stops) {
        this.tok = tok;
        this.stops = stops;
    }

    /** True once a stop string was seen: nothing more will be emitted. */
    public boolean stopped() { return stopped; }

    /** All text so far (complete characters, up to the stop string when one was found). */
    public String text() { return text.toString(); }

    /** Adds a token's bytes; returns the text that is now safe to show (may be empty). */
    public String add(int token) {
        if (stopped) return "";
        byte[] b = tok.bytes(token);
        if (pendingLen + b.length > pending.length) pending = Arrays.copyOf(pending, 2 * (pendingLen + b.length));
        System.arraycopy(b, 0, pending, pendingLen, b.length);
        pendingLen += b.length;
        int complete = completeUtf8(pending, pendingLen);
        if (complete > 0) {
            text.append(new String(pending, 0, complete, StandardCharsets.UTF_8));
            System.arraycopy(pending, complete, pending, 0, pendingLen - complete);
            pendingLen -= complete;
        }
        return release(false);
    }

    /** Ends the stream: returns whatever was held back (an incomplete character becomes U+FFFD). */
    public String finish() {
        if (!stopped && pendingLen > 0) {
            text.append(new String(pending, 0, pendingLen, StandardCharsets.UTF_8));
            pendingLen = 0;
        }
        return release(true);
    }

    private String release(boolean end) {
        if (stopped) return "";
        // a stop string can only start at or after 'emitted': anything earlier that began one was held back
        int at = -1;
        for (String s : stops) {
            int i = text.indexOf(s, emitted);
            if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        int safe;
        if (at >= 0) {
            text.setLength(at);
            stopped = true;
            pendingLen = 0;
            safe = at;
        } else {
            safe = end ? text.length() : text.length() - heldBack();
        }
        String delta = safe > emitted ? text.substring(emitted, safe) : "";
        emitted = Math.max(emitted, safe);
        return delta;
    }

    /** Length of the longest suffix of the text that is a proper prefix of some stop string. */
    private int heldBack() {
        int best = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, text.length() - emitted); k > best; k--) {
                if (text.substring(text.length() - k).equals(s.substring(0, k))) { best = k; break; }
            }
        }
        return best;
    }

    /** The length of the longest prefix of b[0, n) that does not end inside a UTF-8 sequence. */
    static int completeUtf8(byte[] b, int n) {
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xff;
            if ((c & 0xC0) == 0x80) continue; // continuation byte: look further back for the lead
            int need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
