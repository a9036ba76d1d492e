package ai.wafer.data;

import ai.wafer.cli.Wafer;
import ai.wafer.io.TokenShard;
import ai.wafer.testutil.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class PrepareTest {
    static final Path TOK = Fixtures.TOKENIZER, BROWN = Path.of("data/brown/val.txt");
    @TempDir Path tmp;

    /**
     * prepare's shards hold, per document, tokenize's ids plus one separator. The documents are split here
     * independently of TextDocuments (blocks between blank lines), tokenised with `wafer tokenize`.
     */
    @Test void shardTokensEqualTokenizePlusOneSeparatorPerDocument() throws Exception {
        ObjectMapper om = new ObjectMapper();
        String[] blocks = Files.readString(BROWN).split("\n\\s*\n");
        List<String> docs = new ArrayList<>();
        for (String b : blocks) if (!b.isBlank()) docs.add(b.strip());
        StringBuilder jsonl = new StringBuilder();
        for (String d : docs) jsonl.append(om.writeValueAsString(java.util.Map.of("text", d))).append('\n');
        Path in = tmp.resolve("docs.jsonl"), out = tmp.resolve("ids.jsonl");
        Files.writeString(in, jsonl);
        assertEquals(0, Wafer.commandLine().execute("tokenize", "--tokenizer", TOK.toString(), "--input", in.toString(), "--output", out.toString()));
        long expected = 0;
        List<String> lines = Files.readAllLines(out);
        assertEquals(docs.size(), lines.size());
        for (String l : lines) {
            JsonNode o = om.readTree(l);
            assertTrue(o.has("text"));
            expected += o.get("ids").size() + 1;
        }

        Path shards = tmp.resolve("shards");
        assertEquals(0, Wafer.commandLine().execute("prepare", "--tokenizer", TOK.toString(), "--input", BROWN.toString(),
                "--out", shards.toString(), "--val-fraction", "0.1", "--shard-tokens", "10000"));
        long total = 0;
        int eots = 0;
        List<Path> files;
        try (var s = Files.list(shards)) { files = s.sorted().toList(); }
        assertTrue(files.size() > 3, "the text spans several shards: " + files); // ~45k tokens at 10k a shard
        for (Path f : files) {
            try (TokenShard sh = TokenShard.open(f)) {
                total += sh.size();
                for (int t : sh.read(0, (int) sh.size())) if (t == 50256) eots++;
            }
        }
        assertEquals(expected, total);
        assertEquals(docs.size(), eots);
        assertEquals(50256, TokenShard.open(files.getFirst()).get(0), "each document starts with the separator");
    }

    @Test void invalidUtf8AndEmptyFilesAreReportedNotFatal() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("in"));
        Files.write(dir.resolve("a.txt"), new byte[] {'o', 'k', '\n', '\n', 'b', (byte) 0xFF, 'd', '\n'});
        Files.write(dir.resolve("b.txt"), new byte[0]);
        Files.writeString(dir.resolve("c.jsonl"), "{\"text\": \"one\"}\nnot json\n{\"text\": \"two<|endoftext|>\"}\n");
        List<String> warnings = new ArrayList<>();
        var tok = ai.wafer.tokenizer.Tokenizer.load(TOK);
        Prepare.Summary s = Prepare.run(tok, List.of(dir), tmp.resolve("out"), 0, 1000, (b, t, d) -> {}, warnings::add);
        assertEquals(4, s.documents());
        assertEquals(3, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("a.txt:3: invalid UTF-8"), warnings.get(0));
        assertTrue(warnings.get(1).contains("b.txt: empty file"), warnings.get(1));
        assertTrue(warnings.get(2).contains("c.jsonl:2: not valid JSON"), warnings.get(2));
        try (TokenShard sh = TokenShard.open(tmp.resolve("out/train_000000.bin"))) {
            int[] all = sh.read(0, (int) sh.size());
            assertEquals("<|endoftext|>ok<|endoftext|>b\uFFFDd<|endoftext|>one<|endoftext|>two<|endoftext|>", tok.decode(all));
        }
    }
}
