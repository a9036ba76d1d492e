package ai.wafer.data;

import ai.wafer.WaferException;
import ai.wafer.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class TaskDataTest {
    static final Path DATA = Path.of("../shared/data"), TOK = Path.of("../shared/fixtures/gpt2-tokenizer");
    static Tokenizer tok;
    @TempDir Path tmp;

    @BeforeAll static void load() {
        assumeTrue(Files.isDirectory(DATA) && Files.isDirectory(TOK), "shared data absent");
        tok = Tokenizer.load(TOK);
    }

    @Test void brownPosReadsWithLabelsFromTrain() {
        LabelSet tags = ConllReader.labels(ConllReader.read(DATA.resolve("brown/pos/train.conll")));
        assertEquals(225, tags.size());
        List<ConllReader.Sentence> dev = ConllReader.read(DATA.resolve("brown/pos/dev.conll"));
        assertEquals(5861, dev.size());
        ConllReader.Sentence s = dev.getFirst();
        assertEquals(List.of("Austin", ",", "Texas"), s.words().subList(0, 3));
        var strict = assertThrows(WaferException.class, () -> TaskEncoder.tokenClassification(tok, dev, tags));
        assertTrue(strict.getMessage().contains("dev.conll:"), strict.getMessage()); // a tag train lacks
        LabelSet lenient = tags.ignoringUnknown();
        List<Example> ex = TaskEncoder.tokenClassification(tok, dev, lenient);
        assertTrue(lenient.unknownSeen() > 0 && lenient.unknownSeen() < 50, "unknown " + lenient.unknownSeen());
        Example e = ex.getFirst();
        assertArrayEquals(tok.encode(" Austin"), java.util.Arrays.copyOf(e.ids(), tok.encode(" Austin").length));
        assertEquals(tags.id("np", "test"), e.labels()[0]);
        int firsts = 0;
        for (int l : e.labels()) if (l != Example.IGNORE) firsts++;
        assertEquals(s.words().size(), firsts, "one label per word, on its first sub-token");
    }

    @Test void fourColumnConll2003() throws Exception {
        Path f = tmp.resolve("ner.conll");
        Files.writeString(f, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
                + "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n");
        List<ConllReader.Sentence> ss = ConllReader.read(f);
        assertEquals(2, ss.size());
        assertEquals(List.of("EU", "rejects", "German"), ss.get(0).words());
        assertEquals(List.of("B-ORG", "O", "B-MISC"), ss.get(0).tags());
        assertEquals(List.of("B-MISC", "B-ORG", "B-PER", "I-PER", "O"), ConllReader.labels(ss).names());
        Example e = TaskEncoder.tokenClassification(tok, ss.get(1), ConllReader.labels(ss));
        assertEquals(tok.encode(" Peter Blackburn").length, e.length());
    }

    @Test void conllErrorsSayFileAndLine() throws Exception {
        Path f = tmp.resolve("bad.conll");
        Files.writeString(f, "a\tx\nlonely\n");
        var ex = assertThrows(WaferException.class, () -> ConllReader.read(f));
        assertTrue(ex.getMessage().contains("bad.conll:2:"), ex.getMessage());
        List<ConllReader.Sentence> ss = ConllReader.read(write("ok.conll", "a\tUNSEEN\n"));
        var unknown = assertThrows(WaferException.class,
                () -> TaskEncoder.tokenClassification(tok, ss.getFirst(), new LabelSet(List.of("x"))));
        assertTrue(unknown.getMessage().contains("ok.conll:1") && unknown.getMessage().contains("UNSEEN"), unknown.getMessage());
    }

    @Test void jsonlClassification() {
        var spam = TextClassificationReader.read(DATA.resolve("spam/dev.jsonl"));
        assertEquals(605, spam.size());
        assertEquals(List.of("ham", "spam"), TextClassificationReader.labels(spam).names());
        var genre = TextClassificationReader.read(DATA.resolve("brown/genre/dev.jsonl"));
        assertEquals(1135, genre.size());
        LabelSet g = TextClassificationReader.labels(TextClassificationReader.read(DATA.resolve("brown/genre/train.jsonl")));
        assertEquals(15, g.size());
        Example e = TaskEncoder.sequenceClassification(tok, genre.getFirst(), g);
        assertEquals(g.id("news", "t"), e.label());
        assertArrayEquals(tok.encode(genre.getFirst().text()), e.ids());
    }

    @Test void csvWithHeaderQuotesAndNewlines() throws Exception {
        Path f = write("d.csv", "id,text,label\n1,\"hello, world\",pos\n2,\"say \"\"hi\"\"\nthen go\",neg\n\n3,plain,pos\n");
        var rows = TextClassificationReader.read(f);
        assertEquals(3, rows.size());
        assertEquals("hello, world", rows.get(0).text());
        assertEquals("say \"hi\"\nthen go", rows.get(1).text());
        assertEquals("neg", rows.get(1).label());
        assertTrue(rows.get(2).where().endsWith("d.csv:6"), rows.get(2).where());
        var bad = assertThrows(WaferException.class, () -> TextClassificationReader.read(write("b.csv", "text,label\na,b,c\n")));
        assertTrue(bad.getMessage().contains("b.csv:2:"), bad.getMessage());
        var noLabel = assertThrows(WaferException.class, () -> TextClassificationReader.read(write("c.jsonl", "{\"text\":\"a\"}\n")));
        assertTrue(noLabel.getMessage().contains("c.jsonl:1:"), noLabel.getMessage());
    }

    @Test void chatLossOnlyOnResponses() throws Exception {
        Path f = write("chat.jsonl", "{\"prompt\": \"Name a colour.\", \"response\": \"Blue.\"}\n"
                + "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"},"
                + " {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"Bye\"},"
                + " {\"role\": \"assistant\", \"content\": \"Goodbye.\"}]}\n");
        var cs = ChatReader.read(f);
        assertEquals(2, cs.size());
        Example a = TaskEncoder.chat(tok, cs.get(0));
        assertEquals("### User:\nName a colour.\n\n### Assistant:\nBlue.<|endoftext|>", tok.decode(a.ids()));
        assertEquals("Blue.<|endoftext|>", tok.decode(learned(a)));
        Example b = TaskEncoder.chat(tok, cs.get(1));
        assertEquals("Hello!<|endoftext|>Goodbye.<|endoftext|>", tok.decode(learned(b)));
        var bad = assertThrows(WaferException.class, () -> ChatReader.read(write("bad.jsonl", "{\"prompt\": \"x\"}\n")));
        assertTrue(bad.getMessage().contains("bad.jsonl:1:"), bad.getMessage());
        var noAssistant = assertThrows(WaferException.class,
                () -> ChatReader.read(write("na.jsonl", "\n{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n")));
        assertTrue(noAssistant.getMessage().contains("na.jsonl:2:"), noAssistant.getMessage());
    }

    private static int[] learned(Example e) {
        return java.util.Arrays.stream(e.labels()).filter(l -> l != Example.IGNORE).toArray();
    }

    private Path write(String name, String text) throws Exception {
        Path f = tmp.resolve(name);
        Files.writeString(f, text);
        return f;
    }
}
