package ai.wafer.tokenizer;

import ai.wafer.WaferException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.GptBytePairEncodingParams;
import com.knuddels.jtokkit.api.IntArrayList;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

/**
 * GPT-2's byte-level BPE, loaded from a checkpoint directory ({@code vocab.json} + {@code merges.txt},
 * or {@code tokenizer.json}).
 *
 * <p>The BPE core is jtokkit's (fast, tiktoken's algorithm), fed with this checkpoint's own vocabulary:
 * a merged byte string's rank is its line in merges.txt, a single byte's rank is its value, and the
 * output ids are mapped from ranks to the checkpoint's vocab ids (for GPT-2 the two coincide). Special
 * tokens ({@code <|endoftext|>}) are split out of the text first, as Hugging Face does, because
 * jtokkit's {@code encode} refuses them. Instances are immutable and safe to share between threads.
 */
public final class Tokenizer {
    /**
     * GPT-2's pre-tokenisation {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|...}, with the contractions folded into
     * one group (same matches: none is a prefix of another; Java's regex runs it about twice as fast).
     * UNICODE_CHARACTER_CLASS makes {@code \s} Unicode's White_Space, as in tiktoken.
     */
    public static final String GPT2_PATTERN =
            "'(?:[stmd]|re|ve|ll)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    public static final String EOT_TEXT = "<|endoftext|>";

    private final Encoding bpe;
    private final int[] idOfRank;          // null when rank == id (GPT-2)
    private final byte[][] bytesOfId;      // for decoding; specials hold their UTF-8 text
    private final String[] specialText;    // specials, longest first so a prefix never wins
    private final int[] specialId;
    private final int eot;
    private final Path dir;

    private Tokenizer(Path dir, Encoding bpe, int[] idOfRank, byte[][] bytesOfId, Map<String, Integer> specials) {
        this.dir = dir;
        this.bpe = bpe;
        this.idOfRank = idOfRank;
        this.bytesOfId = bytesOfId;
        List<Map.Entry<String, Integer>> sp = new ArrayList<>(specials.entrySet());
        sp.sort((a, b) -> b.getKey().length() - a.getKey().length());
        specialText = sp.stream().map(Map.Entry::getKey).toArray(String[]::new);
        specialId = sp.stream().mapToInt(Map.Entry::getValue).toArray();
        eot = specials.getOrDefault(EOT_TEXT, -1);
    }

    // ------------------------------------------------------------------ loading

    /** Loads the tokenizer of a checkpoint directory: vocab.json + merges.txt, else tokenizer.json. */
    public static Tokenizer load(Path dir) {
        Path vocab = dir.resolve("vocab.json"), merges = dir.resolve("merges.txt"), tj = dir.resolve("tokenizer.json");
        try {
            if (Files.isRegularFile(vocab) && Files.isRegularFile(merges)) return fromVocabMerges(dir, vocab, merges);
            if (Files.isRegularFile(tj)) return fromTokenizerJson(dir, tj);
        } catch (IOException e) {
            throw new WaferException("cannot read tokenizer in " + dir + ": " + e.getMessage(), e);
        }
        throw new WaferException(dir + ": no tokenizer here (expected vocab.json + merges.txt, or tokenizer.json)");
    }

    private static Tokenizer fromVocabMerges(Path dir, Path vocabFile, Path mergesFile) throws IOException {
        Map<String, Integer> vocab = readVocab(readJson(vocabFile), vocabFile.toString());
        List<String[]> merges = new ArrayList<>();
        List<Integer> lineOf = new ArrayList<>();
        List<String> lines = Files.readAllLines(mergesFile, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i);
            if (l.isEmpty() || (i == 0 && l.startsWith("#version"))) continue;
            String[] pair = l.split(" ");
            if (pair.length != 2) throw new WaferException(mergesFile + ":" + (i + 1) + ": expected two tokens separated by one space, got \"" + l + "\"");
            merges.add(pair);
            lineOf.add(i + 1);
        }
        if (merges.isEmpty()) throw new WaferException(mergesFile + ": no merges (the tokenizer would encode byte by byte)");
        Map<String, Integer> specials = new LinkedHashMap<>();
        if (vocab.containsKey(EOT_TEXT)) specials.put(EOT_TEXT, vocab.get(EOT_TEXT));
        Path added = dir.resolve("added_tokens.json");
        if (Files.isRegularFile(added)) {
            readJson(added).properties().forEach(e -> specials.put(e.getKey(), e.getValue().asInt()));
        }
        return build(dir, vocab, merges, lineOf, mergesFile.toString(), specials);
    }

    private static Tokenizer fromTokenizerJson(Path dir, Path file) throws IOException {
        JsonNode root = readJson(file);
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText("BPE")) || !model.has("vocab") || !model.has("merges"))
            throw new WaferException(file + ": model is not a byte-level BPE with vocab and merges");
        Map<String, Integer> vocab = readVocab(model.get("vocab"), file + " (model.vocab)");
        List<String[]> merges = new ArrayList<>();
        List<Integer> index = new ArrayList<>();
        int i = 0;
        for (JsonNode m : model.get("merges")) {
            // two spellings exist: "a b" (older files) and ["a", "b"] (newer files)
            String[] pair = m.isArray() ? new String[] {m.path(0).asText(), m.path(1).asText()} : m.asText().split(" ");
            if (pair.length != 2) throw new WaferException(file + ": model.merges[" + i + "] is not a pair: " + m);
            merges.add(pair);
            index.add(i++);
        }
        if (merges.isEmpty()) throw new WaferException(file + ": model.merges is empty (the tokenizer would encode byte by byte)");
        Map<String, Integer> specials = new LinkedHashMap<>();
        for (JsonNode t : root.path("added_tokens")) {
            if (t.path("special").asBoolean(true)) specials.put(t.path("content").asText(), t.path("id").asInt());
        }
        if (vocab.containsKey(EOT_TEXT)) specials.putIfAbsent(EOT_TEXT, vocab.get(EOT_TEXT));
        return build(dir, vocab, merges, index, file + " model.merges index", specials);
    }

    /** A tokenizer file's JSON; a file that is not JSON is an error naming it and where it breaks. */
    private static JsonNode readJson(Path file) throws IOException {
        try {
            return new ObjectMapper().readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            var at = e.getLocation();
            throw new WaferException(file + (at == null ? "" : ":" + at.getLineNr() + ":" + at.getColumnNr()) + ": not valid JSON: "
                    + e.getOriginalMessage(), e);
        }
    }

    private static Map<String, Integer> readVocab(JsonNode node, String where) {
        if (node == null || !node.isObject()) throw new WaferException(where + ": expected a JSON object of token -> id");
        Map<String, Integer> vocab = new HashMap<>();
        node.properties().forEach(e -> {
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0)
                throw new WaferException(where + ": token \"" + e.getKey() + "\" has id " + e.getValue() + ", expected an int >= 0");
            vocab.put(e.getKey(), e.getValue().asInt());
        });
        return vocab;
    }

    private static Tokenizer build(Path dir, Map<String, Integer> vocab, List<String[]> merges, List<Integer> lineOf,
                                   String mergesWhere, Map<String, Integer> specials) {
        int size = 0;
        for (int id : vocab.values()) size = Math.max(size, id + 1);
        for (int id : specials.values()) size = Math.max(size, id + 1);
        byte[][] bytesOfId = new byte[size][];
        for (var e : vocab.entrySet()) {
            if (specials.containsKey(e.getKey())) continue;
            byte[] b = ByteAlphabet.toBytes(e.getKey());
            if (b == null) throw new WaferException("vocabulary of " + dir + ": token \"" + e.getKey() + "\" (id " + e.getValue()
                    + ") has a character outside GPT-2's byte alphabet; not a byte-level BPE vocabulary");
            bytesOfId[e.getValue()] = b;
        }
        for (var e : specials.entrySet()) bytesOfId[e.getValue()] = e.getKey().getBytes(StandardCharsets.UTF_8);

        // Ranks: 256 + merge index for merged strings (first merge wins). A single byte's rank never takes
        // part in merging, so it is its vocab id when those are a permutation of 0..255 (GPT-2), else its value.
        int[] byteId = new int[256];
        boolean[] taken = new boolean[256];
        boolean byteIdsArePermutation = true;
        for (int b = 0; b < 256; b++) {
            String s = ByteAlphabet.toChars(new byte[] {(byte) b});
            Integer id = vocab.get(s);
            if (id == null) throw new WaferException("vocabulary of " + dir + ": byte " + b + " (\"" + s + "\") is missing");
            byteId[b] = id;
            if (id >= 256 || taken[id]) byteIdsArePermutation = false; else taken[id] = true;
        }
        Map<byte[], Integer> ranks = new HashMap<>();
        Map<String, Integer> seen = new HashMap<>();
        int[] idOfRank = new int[256 + merges.size()];
        boolean sameAsRank = true; // GPT-2: every rank is its own id, so ids need no mapping
        for (int b = 0; b < 256; b++) {
            int rank = byteIdsArePermutation ? byteId[b] : b;
            ranks.put(new byte[] {(byte) b}, rank);
            seen.put(ByteAlphabet.toChars(new byte[] {(byte) b}), rank);
            idOfRank[rank] = byteId[b];
            sameAsRank &= byteId[b] == rank;
        }
        for (int i = 0; i < merges.size(); i++) {
            String merged = merges.get(i)[0] + merges.get(i)[1];
            Integer id = vocab.get(merged);
            if (id == null) throw new WaferException(mergesWhere + ":" + lineOf.get(i) + ": merge result \"" + merged + "\" is not in the vocabulary");
            int rank = 256 + i;
            if (seen.putIfAbsent(merged, rank) != null) continue;
            ranks.put(ByteAlphabet.toBytes(merged), rank);
            idOfRank[rank] = id;
            sameAsRank &= id == rank;
        }
        var params = new GptBytePairEncodingParams("wafer-" + dir.getFileName(),
                Pattern.compile(GPT2_PATTERN, Pattern.UNICODE_CHARACTER_CLASS), ranks, Map.of());
        Encoding bpe = Encodings.newLazyEncodingRegistry().registerGptBytePairEncoding(params)
                .getEncoding(params.getName()).orElseThrow();
        return new Tokenizer(dir, bpe, sameAsRank ? null : idOfRank, bytesOfId, specials);
    }

    // ------------------------------------------------------------------ encoding

    /** Ids of {@code text}; special-token text such as {@code <|endoftext|>} becomes the special id. */
    public int[] encode(String text) {
        if (idOfRank == null && firstSpecial(text) < 0) return bpe.encodeOrdinary(text).toArray(); // the common case, no copying
        IntArrayList out = new IntArrayList(text.length() / 3 + 4);
        encodeInto(text, out);
        return out.toArray();
    }

    /** Appends the ids of {@code text} to {@code out} (specials recognised). */
    public void encodeInto(String text, IntArrayList out) {
        int from = 0;
        while (from < text.length()) {
            int at = text.length(), which = -1;
            for (int s = 0; s < specialText.length; s++) {
                int k = text.indexOf(specialText[s], from);
                if (k >= 0 && k < at) { at = k; which = s; }
            }
            if (at > from) appendOrdinary(text.substring(from, at), out);
            if (which < 0) break;
            out.add(specialId[which]);
            from = at + specialText[which].length();
        }
    }

    private int firstSpecial(String text) {
        int at = -1;
        for (String sp : specialText) {
            int k = text.indexOf(sp);
            if (k >= 0 && (at < 0 || k < at)) at = k;
        }
        return at;
    }

    /** Ids of {@code text} with special-token text treated as plain text. */
    public int[] encodeOrdinary(String text) {
        if (idOfRank == null) return bpe.encodeOrdinary(text).toArray();
        IntArrayList out = new IntArrayList(text.length() / 3 + 4);
        appendOrdinary(text, out);
        return out.toArray();
    }

    private void appendOrdinary(String text, IntArrayList out) {
        IntArrayList ranks = bpe.encodeOrdinary(text);
        for (int i = 0, n = ranks.size(); i < n; i++) {
            int r = ranks.get(i);
            out.add(idOfRank == null ? r : idOfRank[r]);
        }
    }

    /** Encodes many texts on all cores; result i belongs to text i. */
    public int[][] encodeBatch(List<String> texts) {
        int[][] out = new int[texts.size()][];
        // documents differ in length, so hand them out one at a time (work stealing), not in fixed chunks
        IntStream.range(0, texts.size()).parallel().forEach(i -> out[i] = encode(texts.get(i)));
        return out;
    }

    // ------------------------------------------------------------------ decoding

    /** The exact bytes the ids stand for. */
    public byte[] decodeBytes(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
        for (int id : ids) out.writeBytes(bytes(id));
        return out.toByteArray();
    }

    /** The text the ids stand for; byte sequences that are not valid UTF-8 become U+FFFD. */
    public String decode(int[] ids) { return new String(decodeBytes(ids), StandardCharsets.UTF_8); }

    /** The bytes of one token. */
    public byte[] bytes(int id) {
        if (id < 0 || id >= bytesOfId.length || bytesOfId[id] == null)
            throw new WaferException("token id " + id + " is not in the vocabulary of " + dir + " (size " + bytesOfId.length + ")");
        return bytesOfId[id];
    }

    /** The id of {@code <|endoftext|>}, or -1 if this vocabulary has none. */
    public int eot() { return eot; }

    /** One more than the largest id. */
    public int vocabSize() { return bytesOfId.length; }

    public Path dir() { return dir; }
}
