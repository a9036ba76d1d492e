package ai.wafer.data;

import ai.wafer.WaferException;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** The labels of a task, numbered in sorted order so the numbering depends only on the set, not on file order. */
public final class LabelSet {
    private final List<String> names;
    private final Map<String, Integer> ids = new HashMap<>();

    /** Dev and test files may hold rare tags that training lacks: fine-tuning numbers the union ({@code TaskData}). */
    public LabelSet(Collection<String> labels) {
        names = List.copyOf(new TreeSet<>(labels));
        for (int i = 0; i < names.size(); i++) ids.put(names.get(i), i);
    }

    /** The id of {@code label}; {@code where} (file:line) goes into the error when the label is unknown. */
    public int id(String label, String where) {
        Integer id = ids.get(label);
        if (id == null) throw new WaferException(where + ": label \"" + label + "\" is not among the " + names.size()
                + " labels of the training file");
        return id;
    }

    public String name(int id) { return names.get(id); }
    public int size() { return names.size(); }
    public List<String> names() { return names; }
}
