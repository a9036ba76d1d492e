package ai.wafer.data;

import ai.wafer.WaferException;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * CoNLL token-classification files: one token a line, columns separated by tabs or spaces, the token in the
 * first column and the tag in the last (so both {@code token<TAB>tag} and CoNLL-2003's four columns read);
 * a blank line ends a sentence; {@code -DOCSTART-} lines are skipped.
 */
public final class ConllReader {
    /** One sentence; {@code where} is "file:line" of its first token, for error messages. */
    public record Sentence(List<String> words, List<String> tags, String where) {}

    private ConllReader() {}

    public static List<Sentence> read(Path file) {
        List<Sentence> out = new ArrayList<>();
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            List<String> words = new ArrayList<>(), tags = new ArrayList<>();
            String line, where = null;
            int n = 0;
            while ((line = in.readLine()) != null) {
                n++;
                String t = line.strip();
                if (t.isEmpty() || t.startsWith("-DOCSTART-")) {
                    if (!words.isEmpty()) {
                        out.add(new Sentence(List.copyOf(words), List.copyOf(tags), where));
                        words.clear();
                        tags.clear();
                    }
                    continue;
                }
                String[] cols = t.split("[\\t ]+");
                if (cols.length < 2)
                    throw new WaferException(file + ":" + n + ": expected a token and a tag separated by a tab or space, got \"" + t + "\"");
                if (words.isEmpty()) where = file + ":" + n;
                words.add(cols[0]);
                tags.add(cols[cols.length - 1]);
            }
            if (!words.isEmpty()) out.add(new Sentence(List.copyOf(words), List.copyOf(tags), where));
        } catch (CharacterCodingException e) {
            throw new WaferException(file + ": invalid UTF-8");
        } catch (IOException e) {
            throw new WaferException(file + ": cannot read: " + e.getMessage(), e);
        }
        if (out.isEmpty()) throw new WaferException(file + ": no sentences");
        return out;
    }

    /** The tags used in {@code sentences} (read them from the training file). */
    public static LabelSet labels(List<Sentence> sentences) {
        Set<String> tags = new LinkedHashSet<>();
        for (Sentence s : sentences) tags.addAll(s.tags());
        return new LabelSet(tags);
    }
}
