package ai.wafer.eval;

import ai.wafer.WaferException;

import java.util.ArrayList;
import java.util.List;

/**
 * Extracts entity spans from a tag sequence ("B-PER", "I-PER", "O", ...), in two modes:
 * <ul>
 * <li>lenient (seqeval's default): any tagging is read generously. A chunk ends after E- or S-, before B-, S-
 * or O, and where the type changes; any non-O token not continuing a chunk starts one. So {@code I-PER I-PER}
 * is one PER entity, and {@code B-PER I-LOC} is PER then LOC.</li>
 * <li>strict (seqeval's {@code mode="strict"}): only spans well formed under the given {@link Tagging} count;
 * ill-formed tokens belong to no entity. IOB2: an entity is B-X followed by I-X*; an I- that does not continue
 * a span of its type is dropped. IOB1: an entity is a run of I-X / B-X tokens of one type, where B-X is only
 * legal right after a token of type X (it splits two adjacent entities) and I-X begins an entity only after a
 * token not of type X. IOBES: B-X I-X* E-X or S-X; a span not closed by E-X of its type is dropped.
 * A prefix the scheme does not have (E- in IOB2, say) is an error.</li>
 * </ul>
 * Tags are prefix-first with a '-' delimiter; a bare prefix ("B") has type "_", as in seqeval.
 */
public final class EntitySpans {
    /** An entity: {@code start} and {@code end} are token indices within the sentence, end inclusive. */
    public record Entity(int sentence, String type, int start, int end) {
        @Override public String toString() { return type + "[" + sentence + ":" + start + ".." + end + "]"; }
    }

    private EntitySpans() {}

    /** Lenient (seqeval default) extraction. */
    public static List<Entity> lenient(List<String> tags, int sentence) {
        List<Entity> out = new ArrayList<>();
        boolean open = false;
        int begin = 0;
        char prevPrefix = 'O';
        String prevType = "";
        for (int i = 0; i <= tags.size(); i++) {
            // a trailing O closes the last chunk
            char p = i < tags.size() ? prefix(tags.get(i), sentence, i) : 'O';
            String t = i < tags.size() ? type(tags.get(i)) : "";
            if (open && (prevPrefix == 'E' || prevPrefix == 'S' || p == 'B' || p == 'S' || p == 'O'
                    || !t.equals(prevType))) {
                out.add(new Entity(sentence, prevType, begin, i - 1));
                open = false;
            }
            if (p != 'O' && !open) {
                open = true;
                begin = i;
            }
            prevPrefix = p;
            prevType = t;
        }
        return out;
    }

    /** Strict extraction: only spans well formed under {@code scheme}. */
    public static List<Entity> strict(List<String> tags, Tagging scheme, int sentence) {
        List<Entity> out = new ArrayList<>();
        String openType = null; // type of the span being read, null when none
        int begin = 0;
        String prevType = ""; // type of the previous token, "" for O or the sentence start
        for (int i = 0; i < tags.size(); i++) {
            String tag = tags.get(i);
            char p = prefix(tag, sentence, i);
            if (!scheme.allows(p))
                throw new WaferException("sentence " + sentence + ", token " + i + ": tag '" + tag
                        + "' has a prefix " + scheme + " does not use");
            String t = p == 'O' ? "" : type(tag);
            boolean continues = openType != null && openType.equals(t);
            switch (scheme) {
                case IOB1, IOB2 -> {
                    boolean extend = p == 'I' && continues;
                    if (!extend && openType != null) { // every IOB span is complete when the next token is not its I-
                        out.add(new Entity(sentence, openType, begin, i - 1));
                        openType = null;
                    }
                    boolean starts = scheme == Tagging.IOB2
                            ? p == 'B'
                            : (p == 'I' && !extend && !prevType.equals(t)) || (p == 'B' && prevType.equals(t));
                    if (starts) {
                        openType = t;
                        begin = i;
                    }
                }
                case IOBES -> {
                    if ((p == 'I' || p == 'E') && continues) {
                        if (p == 'E') {
                            out.add(new Entity(sentence, t, begin, i));
                            openType = null;
                        }
                    } else {
                        openType = null; // an unclosed span is dropped
                        if (p == 'B') {
                            openType = t;
                            begin = i;
                        } else if (p == 'S') {
                            out.add(new Entity(sentence, t, i, i));
                        }
                    }
                }
            }
            prevType = t;
        }
        if (openType != null && scheme != Tagging.IOBES) out.add(new Entity(sentence, openType, begin, tags.size() - 1));
        return out;
    }

    private static char prefix(String tag, int sentence, int token) {
        if (tag == null || tag.isEmpty())
            throw new WaferException("sentence " + sentence + ", token " + token + ": empty tag");
        char p = tag.charAt(0);
        boolean ok = tag.equals("O") || ("BIES".indexOf(p) >= 0 && (tag.length() == 1 || tag.charAt(1) == '-'));
        if (!ok)
            throw new WaferException("sentence " + sentence + ", token " + token + ": tag '" + tag
                    + "' is neither O nor B-/I-/E-/S-TYPE");
        return p;
    }

    private static String type(String tag) {
        return tag.length() > 2 ? tag.substring(2) : "_";
    }
}
