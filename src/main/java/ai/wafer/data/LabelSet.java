package ai.wafer.data;

import ai.wafer.WaferException;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;

/** The labels of a task, numbered in sorted order so the numbering depends only on the set, not on file order. */
public final class LabelSet {
    private final List<String> names;
    private final Map<String, Integer> ids = new HashMap<>();
    private final boolean ignoreUnknown;
    private final AtomicLong unknown = new AtomicLong();

    public LabelSet(Collection<String> labels) { this(labels, false); }

    private LabelSet(Collection<String> labels, boolean ignoreUnknown) {
        names = List.copyOf(new TreeSet<>(labels));
        for (int i = 0; i < names.size(); i++) ids.put(names.get(i), i);
        this.ignoreUnknown = ignoreUnknown;
    }

    /**
     * The same labels, but a label the training file lacks gets {@link Example#IGNORE} (no loss, not scored)
     * and is counted in {@link #unknownSeen()}, instead of being an error: for dev/test files, whose rare
     * tags may never occur in training (Brown's dev set has such tags).
     */
    public LabelSet ignoringUnknown() { return new LabelSet(names, true); }

    /** How many unknown labels {@link #id} has mapped to IGNORE. */
    public long unknownSeen() { return unknown.get(); }

    /** The id of {@code label}; {@code where} (file:line) goes into the error when the label is unknown. */
    public int id(String label, String where) {
        Integer id = ids.get(label);
        if (id == null && ignoreUnknown) {
            unknown.incrementAndGet();
            return Example.IGNORE;
        }
        if (id == null) throw new WaferException(where + ": label \"" + label + "\" is not among the " + names.size()
                + " labels of the training file");
        return id;
    }

    public String name(int id) { return names.get(id); }
    public int size() { return names.size(); }
    public List<String> names() { return names; }
}
