package ai.wafer.eval;

import ai.wafer.WaferException;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Entity-level precision / recall / F1 per entity type, with seqeval's semantics: a predicted entity is correct
 * only when its type, sentence, start and end all match a gold entity. Types are every type found in gold or
 * predictions, sorted; averages are micro, macro and support-weighted (no accuracy row, as seqeval).
 */
public final class EntityReport {
    private final PrfTable table;
    private final List<EntitySpans.Entity> gold;

    private EntityReport(PrfTable table, List<EntitySpans.Entity> gold) {
        this.table = table;
        this.gold = gold;
    }

    /** seqeval's default (lenient) mode: works for IOB1, IOB2 and IOBES tags alike. */
    public static EntityReport lenient(List<List<String>> gold, List<List<String>> pred) {
        checkShapes(gold, pred);
        return score(extract(gold, null), extract(pred, null));
    }

    /** seqeval's strict mode: only spans well formed under {@code scheme} count, in gold and predictions. */
    public static EntityReport strict(List<List<String>> gold, List<List<String>> pred, Tagging scheme) {
        checkShapes(gold, pred);
        return score(extract(gold, scheme), extract(pred, scheme));
    }

    private static List<EntitySpans.Entity> extract(List<List<String>> sentences, Tagging strictScheme) {
        List<EntitySpans.Entity> out = new java.util.ArrayList<>();
        for (int s = 0; s < sentences.size(); s++)
            out.addAll(strictScheme == null ? EntitySpans.lenient(sentences.get(s), s)
                    : EntitySpans.strict(sentences.get(s), strictScheme, s));
        return List.copyOf(out);
    }

    private static EntityReport score(List<EntitySpans.Entity> gold, List<EntitySpans.Entity> pred) {
        TreeSet<String> types = new TreeSet<>();
        gold.forEach(e -> types.add(e.type()));
        pred.forEach(e -> types.add(e.type()));
        List<String> labels = List.copyOf(types);
        Set<EntitySpans.Entity> goldSet = new HashSet<>(gold), predSet = new HashSet<>(pred);
        int n = labels.size();
        long[] tp = new long[n], fp = new long[n], fn = new long[n];
        for (EntitySpans.Entity e : predSet) {
            int i = labels.indexOf(e.type());
            if (goldSet.contains(e)) tp[i]++;
            else fp[i]++;
        }
        for (EntitySpans.Entity e : goldSet)
            if (!predSet.contains(e)) fn[labels.indexOf(e.type())]++;
        return new EntityReport(PrfTable.fromCounts(labels, tp, fp, fn), gold);
    }

    private static void checkShapes(List<List<String>> gold, List<List<String>> pred) {
        if (gold.size() != pred.size())
            throw new WaferException("gold has " + gold.size() + " sentences but predictions have " + pred.size());
        for (int s = 0; s < gold.size(); s++)
            if (gold.get(s).size() != pred.get(s).size())
                throw new WaferException("sentence " + s + ": gold has " + gold.get(s).size()
                        + " tags but the prediction has " + pred.get(s).size());
    }

    public PrfTable table() { return table; }
    public List<EntitySpans.Entity> goldEntities() { return gold; }

    public String toText() { return toText(2); }

    public String toText(int digits) { return table.format(digits, null, 0); }

    public Map<String, Object> toMap() { return table.toMap(null); }

    @Override public String toString() { return toText(); }
}
