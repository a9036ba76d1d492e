package ai.wafer.eval;

import java.util.Collection;
import java.util.List;
import java.util.regex.Pattern;

/** Tagging schemes for entity spans; the prefix letters each one allows. */
public enum Tagging {
    /** I- marks entity tokens; B- only starts an entity that directly follows one of the same type. */
    IOB1("BIO"),
    /** BIO: B- starts every entity, I- continues it. */
    IOB2("BIO"),
    /** B- begin, I- inside, E- end, S- single-token entity. */
    IOBES("BIOES");

    private final String prefixes;

    Tagging(String prefixes) { this.prefixes = prefixes; }

    public boolean allows(char prefix) { return prefixes.indexOf(prefix) >= 0; }

    private static final Pattern ENTITY_TAG = Pattern.compile("O|[BIES]-.+");

    /**
     * Whether {@code tags} (a label set, or the tags of a data set) are an entity tagging, so that entity spans
     * mean something: every tag is O or B-/I-/E-/S-TYPE with a type, and at least one is not O. The rule is the
     * stricter of the two that evaluation and the server once used: a bare "B", "I", "E" or "S" is more likely a
     * tag of its own (a segmentation or part-of-speech tag) than an entity without a type, and tags that are all O
     * have no entities to report.
     */
    public static boolean isEntityTagging(Collection<String> tags) {
        boolean entity = false;
        for (String t : tags) {
            if (!ENTITY_TAG.matcher(t).matches()) return false;
            entity |= !t.equals("O");
        }
        return entity;
    }

    /** The scheme gold tags follow: IOBES when E- or S- occurs; IOB2 when every entity starts with B-; else IOB1. */
    public static Tagging detect(List<List<String>> gold) {
        boolean iob1 = false;
        for (List<String> s : gold) {
            String prev = "O";
            for (String t : s) {
                if (t.startsWith("E-") || t.startsWith("S-")) return IOBES;
                if (t.startsWith("I-") && !prev.substring(Math.min(2, prev.length())).equals(t.substring(2))) iob1 = true;
                prev = t;
            }
        }
        return iob1 ? IOB1 : IOB2;
    }
}
