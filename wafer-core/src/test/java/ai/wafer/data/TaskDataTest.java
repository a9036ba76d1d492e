package ai.wafer.data;

import ai.wafer.WaferException;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TaskDataTest {
    /** The bundled Brown sample (data/README.md) and excerpts of the labelled sets (fixtures/README.md). */
    static final Path BROWN = Path.of("data/brown"), TASKS = Fixtures.FIXTURES.resolve("tasks");
    static Tokenizer tok;
    @TempDir Path tmp;

    @BeforeAll static void load() {
        tok = Tokenizer.load(Fixtures.TOKENIZER);
    }

    @Test void brownPosReadsWithLabelsFromTrain() {
        LabelSet tags = ConllReader.labels(ConllReader.read(BROWN.resolve("pos-train.conll")));
        // counted by awk, not by the reader under test:
        //   awk -F'\t' 'NF==2{print $2}' data/brown/pos-train.conll | sort -u | wc -l   -> 134 tags
        //   awk 'BEGIN{RS=""} END{print NR}' data/brown/pos-dev.conll                  -> 977 sentences
        // (the same commands give 225 and 5,861 on the full split in ../shared/data, as its README says)
        assertEquals(134, tags.size());
        List<ConllReader.Sentence> dev = ConllReader.read(BROWN.resolve("pos-dev.conll"));
        assertEquals(977, dev.size());
        ConllReader.Sentence s = dev.getFirst();
        assertEquals(List.of("Austin", ",", "Texas"), s.words().subList(0, 3));
        var strict = assertThrows(WaferException.class, () -> TaskEncoder.tokenClassification(tok, dev, tags));
        assertTrue(strict.getMessage().contains("dev.conll:"), strict.getMessage()); // a tag train lacks
        List<ConllReader.Sentence> both = new java.util.ArrayList<>(dev);
        both.addAll(ConllReader.read(BROWN.resolve("pos-train.conll")));
        LabelSet union = ConllReader.labels(both); // as fine-tuning numbers them (TaskData): train's tags and dev's rare ones
        assertTrue(union.size() > tags.size() && union.size() < tags.size() + 50, "dev adds " + (union.size() - tags.size()) + " tags");
        Example e = TaskEncoder.tokenClassification(tok, dev, union).getFirst();
        assertArrayEquals(tok.encode(" Austin"), java.util.Arrays.copyOf(e.ids(), tok.encode(" Austin").length));
        assertEquals(union.id("np", "test"), e.labels()[0]);
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
        var spam = TextClassificationReader.read(TASKS.resolve("spam-dev.jsonl"));
        assertEquals(2, spam.size()); // one mail of each label
        assertEquals(List.of("ham", "spam"), TextClassificationReader.labels(spam).names());
        var genre = TextClassificationReader.read(TASKS.resolve("brown-genre-dev.jsonl"));
        assertEquals(30, genre.size()); // two paragraphs of each of the 15 genres, news first
        LabelSet g = TextClassificationReader.labels(genre);
        assertEquals(List.of("adventure", "belles_lettres", "editorial", "fiction", "government", "hobbies", "humor",
                "learned", "lore", "mystery", "news", "religion", "reviews", "romance", "science_fiction"), g.names());
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

    @Test void otherColumnsPairsAndLabelLists() throws Exception {
        var cols = new TextClassificationReader.Columns("premise", "hypothesis", "tags");
        var json = TextClassificationReader.read(write("p.jsonl",
                "{\"premise\": \"It rains.\", \"hypothesis\": \"It is wet.\", \"tags\": [\"x\", 2]}\n"), cols);
        assertEquals("It is wet.", json.getFirst().pair());
        assertEquals(List.of("x", "2"), json.getFirst().labels());
        assertTrue(json.getFirst().isList());
        var csv = TextClassificationReader.read(write("p.csv", "tags,premise,hypothesis\n\"[\"\"a\"\",\"\"b\"\"]\",one,two\nc,three,four\n"), cols);
        assertEquals(List.of("a", "b"), csv.get(0).labels());
        assertTrue(csv.get(0).isList());
        assertEquals(List.of("c"), csv.get(1).labels());
        assertFalse(csv.get(1).isList());
        assertEquals("four", csv.get(1).pair());
        var noPair = assertThrows(WaferException.class, () -> TextClassificationReader.read(write("q.jsonl",
                "{\"premise\": \"a\", \"tags\": \"b\"}\n"), cols));
        assertTrue(noPair.getMessage().contains("q.jsonl:1: missing string field \"hypothesis\""), noPair.getMessage());
        var badList = assertThrows(WaferException.class, () -> TextClassificationReader.read(write("r.csv", "premise,hypothesis,tags\na,b,[oops\n"), cols));
        assertTrue(badList.getMessage().contains("r.csv:2: column \"tags\""), badList.getMessage());

        // a pair is the first text, <|endoftext|>, the second
        int[] a = tok.encodeOrdinary("It rains."), b = tok.encodeOrdinary("It is wet."), ids = TaskEncoder.text(tok, "It rains.", "It is wet.");
        assertEquals(a.length + 1 + b.length, ids.length);
        assertEquals(50256, ids[a.length]);
        assertArrayEquals(a, java.util.Arrays.copyOf(ids, a.length));
        assertArrayEquals(b, java.util.Arrays.copyOfRange(ids, a.length + 1, ids.length));
        assertArrayEquals(a, TaskEncoder.text(tok, "It rains.", null));
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
