package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.data.JsonLines;
import ai.wafer.io.AtomicFiles;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code wafer tokenize}: text to token ids, one string or a JSONL file of {"text": ...} objects. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Encode text with a checkpoint's tokenizer: --text prints the ids; --input/--output adds \"ids\" to each JSONL object.")
public final class TokenizeCommand implements Callable<Integer> {
    @Option(names = "--tokenizer", required = true, paramLabel = "DIR", description = "directory with vocab.json + merges.txt (or tokenizer.json)")
    Path tokenizer;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--text", description = "text to encode; the ids are printed as a JSON array") String text;
        @Option(names = "--input", paramLabel = "FILE.jsonl", description = "JSONL with a \"text\" field per line") Path input;
    }

    @Option(names = "--output", paramLabel = "FILE.jsonl", description = "where --input's lines go, each with \"ids\" added")
    Path output;

    private static final int BATCH_LINES = 2048;

    @Override public Integer call() throws IOException {
        Tokenizer tok = Tokenizer.load(tokenizer);
        ObjectMapper json = new ObjectMapper();
        if (source.text != null) {
            System.out.println(json.writeValueAsString(tok.encode(source.text)));
            return 0;
        }
        if (output == null) throw new WaferException("--input needs --output");
        if (Files.exists(output) && Files.isSameFile(source.input, output))
            throw new WaferException("--output " + output + " is the --input file; write to another file");
        AtomicFiles.write(output, tmp -> encode(tok, json, tmp));
        return 0;
    }

    private void encode(Tokenizer tok, ObjectMapper json, Path tmp) throws IOException {
        try (BufferedReader in = Files.newBufferedReader(source.input, StandardCharsets.UTF_8);
             BufferedWriter out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
            List<ObjectNode> objs = new ArrayList<>();
            List<String> texts = new ArrayList<>();
            String line;
            long n = 0;
            while ((line = in.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode node = JsonLines.parse(line, source.input + ":" + n);
                if (!(node instanceof ObjectNode o) || !o.path("text").isTextual())
                    throw new WaferException(source.input + ":" + n + ": expected an object with a string field \"text\"");
                objs.add(o);
                texts.add(o.get("text").asText());
                if (objs.size() == BATCH_LINES) write(tok, json, objs, texts, out);
            }
            write(tok, json, objs, texts, out);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new WaferException(source.input + ": invalid UTF-8");
        }
    }

    /** Encodes the collected lines on all cores and writes them in input order. */
    private static void write(Tokenizer tok, ObjectMapper json, List<ObjectNode> objs, List<String> texts, BufferedWriter out) throws IOException {
        int[][] ids = tok.encodeBatch(texts);
        for (int i = 0; i < objs.size(); i++) {
            var arr = objs.get(i).putArray("ids");
            for (int id : ids[i]) arr.add(id);
            out.write(json.writeValueAsString(objs.get(i)));
            out.write('\n');
        }
        objs.clear();
        texts.clear();
    }
}
