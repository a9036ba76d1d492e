package ai.wafer.data;

import ai.wafer.WaferException;

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
        List<String> words = new ArrayList<>(), tags = new ArrayList<>(), lines = JsonLines.lines(file);
        String where = null;
        for (int i = 0; i < lines.size(); i++) {
            String t = lines.get(i).strip();
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
                throw new WaferException(file + ":" + (i + 1) + ": expected a token and a tag separated by a tab or space, got \"" + t + "\"");
            if (words.isEmpty()) where = file + ":" + (i + 1);
            words.add(cols[0]);
            tags.add(cols[cols.length - 1]);
        }
        if (!words.isEmpty()) out.add(new Sentence(List.copyOf(words), List.copyOf(tags), where));
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
