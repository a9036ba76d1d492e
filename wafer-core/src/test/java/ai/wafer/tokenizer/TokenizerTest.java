package ai.wafer.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import ai.wafer.testutil.Fixtures;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TokenizerTest {
    static final Path CASES = Fixtures.FIXTURES.resolve("gpt2-tokenizer/cases.jsonl");
    static Tokenizer tok;

    @BeforeAll static void load() {
        tok = Tokenizer.load(Fixtures.TOKENIZER);
    }

    @Test void allReferenceCases() throws Exception {
        ObjectMapper om = new ObjectMapper();
        List<String> lines = Files.readAllLines(CASES);
        assertEquals(446, lines.size());
        List<String> failures = new ArrayList<>();
        for (int n = 0; n < lines.size(); n++) {
            JsonNode c = om.readTree(lines.get(n));
            String text = c.get("text").asText();
            int[] want = om.convertValue(c.get("ids"), int[].class);
            int[] got = tok.encode(text);
            if (!java.util.Arrays.equals(want, got)) failures.add("case " + (n + 1) + " " + om.writeValueAsString(text));
            else if (c.get("roundtrip").asBoolean() && !tok.decode(got).equals(text)) failures.add("decode case " + (n + 1));
        }
        assertTrue(failures.isEmpty(), failures.size() + " failures: " + failures.subList(0, Math.min(10, failures.size())));
    }

    @Test void specialTokenIsRecognisedOnlyByEncode() {
        assertEquals(50256, tok.eot());
        int[] ids = tok.encode("a<|endoftext|>b");
        assertArrayEquals(new int[] {64, 50256, 65}, ids);
        assertNotEquals(50256, tok.encodeOrdinary("<|endoftext|>")[0]);
        assertEquals("a<|endoftext|>b", tok.decode(ids));
    }

    /** Text the cases lack, checked against jtokkit's own r50k_base (tiktoken's "gpt2" ranks). */
    @Test void otherScriptsEmojiSpacesDigitsCodeMatchR50k() {
        Encoding r50k = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);
        String[] texts = {
                "Привет, мир! Ελληνικά κείμενα. עברית ועוד. العربية هنا",
                "日本語のテキストと中文文本，还有한국어 텍스트。",
                "emoji 👍🏽👨‍👩‍👧‍👦 🇩🇪 ❤️ done",
                "x" + " ".repeat(100) + "y" + "\t\t\n\n\n   \u00a0\u3000z   ",
                "1234567890".repeat(20) + " 3.14159 1,000,000 ٣٤٥ ⅷ",
                "def f(x):\n    return {'a': [x**2 for x in range(10)]}  # comment\n\tif (a != b) { c->d; }\n",
                "I'm he'll they've WE'RE it'S don't",
                "naïve café Zürich ﬁ ligature e\u0301 combining",
        };
        for (String t : texts) {
            int[] want = r50k.encodeOrdinary(t).toArray();
            assertArrayEquals(want, tok.encode(t), t);
            assertEquals(t, tok.decode(tok.encode(t)), t);
        }
    }

    @Test void decodeRestoresExactBytesEvenWhenTokensSplitACharacter() {
        String t = "🙂 ok";
        int[] ids = tok.encode(t);
        assertArrayEquals(t.getBytes(StandardCharsets.UTF_8), tok.decodeBytes(ids));
        // the emoji is several byte tokens: decoding a prefix must give its exact bytes, not U+FFFD
        byte[] first = tok.decodeBytes(new int[] {ids[0]});
        byte[] all = t.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < first.length; i++) assertEquals(all[i], first[i]);
    }

    /** A directory with only tokenizer.json (merges in both spellings) encodes as vocab.json + merges.txt. */
    @Test void tokenizerJsonGivesTheSameIds(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        ObjectMapper om = new ObjectMapper();
        List<String> merges = Files.readAllLines(Fixtures.TOKENIZER.resolve("merges.txt")).stream().filter(l -> !l.isEmpty() && !l.startsWith("#version")).toList();
        var root = om.createObjectNode();
        var model = root.putObject("model");
        model.put("type", "BPE");
        model.set("vocab", om.readTree(Fixtures.TOKENIZER.resolve("vocab.json").toFile()));
        var arr = model.putArray("merges");
        for (int i = 0; i < merges.size(); i++) {
            if (i % 2 == 0) arr.add(merges.get(i));
            else arr.addArray().add(merges.get(i).split(" ")[0]).add(merges.get(i).split(" ")[1]);
        }
        root.putArray("added_tokens").addObject().put("id", 50256).put("content", "<|endoftext|>").put("special", true);
        om.writeValue(tmp.resolve("tokenizer.json").toFile(), root);
        Tokenizer t2 = Tokenizer.load(tmp);
        String text = "Hello, world! It's 2024 <|endoftext|> ünïcödé   spaces\n\n";
        assertArrayEquals(tok.encode(text), t2.encode(text));
        assertEquals(50256, t2.eot());
        var missing = assertThrows(ai.wafer.WaferException.class, () -> Tokenizer.load(tmp.resolve("nope")));
        assertTrue(missing.getMessage().contains("no tokenizer"), missing.getMessage());
    }

    @Test void batchEqualsOneByOne() {
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 200; i++) texts.add("document " + i + " says " + "word ".repeat(i % 17) + "<|endoftext|>" + i);
        int[][] batch = tok.encodeBatch(texts);
        for (int i = 0; i < texts.size(); i++) assertArrayEquals(tok.encode(texts.get(i)), batch[i]);
    }
}
