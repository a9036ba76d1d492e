package ai.wafer.finetune;

import ai.wafer.WaferException;
import ai.wafer.data.ChatReader;
import ai.wafer.data.ConllReader;
import ai.wafer.data.Example;
import ai.wafer.data.LabelSet;
import ai.wafer.data.TaskEncoder;
import ai.wafer.data.TextClassificationReader;
import ai.wafer.model.SequenceClassifier.Problem;
import ai.wafer.model.Task;
import ai.wafer.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

/**
 * A task's file, encoded: examples whose label ids follow the training file's labels (a label the training
 * file lacks becomes -100: no loss), plus, for scoring, every example's gold label names and the positions
 * they belong to (each word's last sub-token, where a causal model has read the whole word; the last
 * token for a sequence), unknown labels included, so
 * a label the model cannot predict counts as an error rather than vanishing from the score.
 */
public record TaskData(Task task, List<Example> examples, List<List<String>> gold, List<int[]> positions,
                       List<String> labels, Set<String> unknownLabels, int truncated, String file) {

    /** Reads and encodes {@code file}; {@code trainLabels} null means: this is the training file, take its labels. */
    public static TaskData load(Task task, Path file, Tokenizer tok, List<String> trainLabels, int maxLength) {
        return load(task, file, tok, trainLabels, maxLength, TextClassificationReader.Columns.DEFAULT, Problem.SINGLE_LABEL);
    }

    /**
     * As above, a sequence-classification file read from {@code cols} for {@code problem}: multi-label examples get a
     * 0/1 target per training label, regression ones their number (whose only "label" is {@link #REGRESSION_LABEL}).
     */
    public static TaskData load(Task task, Path file, Tokenizer tok, List<String> trainLabels, int maxLength,
                                TextClassificationReader.Columns cols, Problem problem) {
        List<Example> ex = new ArrayList<>();
        List<List<String>> gold = new ArrayList<>();
        List<int[]> pos = new ArrayList<>();
        Set<String> unknown = new TreeSet<>();
        List<String> labels;
        switch (task) {
            case TOKEN_CLASSIFICATION -> {
                List<ConllReader.Sentence> ss = ConllReader.read(file);
                labels = trainLabels != null ? trainLabels : ConllReader.labels(ss).names();
                Set<String> all = new LinkedHashSet<>(labels);
                for (ConllReader.Sentence s : ss) all.addAll(s.tags());
                LabelSet union = new LabelSet(all); // every tag has an id: each word's first sub-token is found
                List<Example> enc = TaskEncoder.tokenClassification(tok, ss, union);
                java.util.Map<String, Integer> trainId = index(labels);
                for (int i = 0; i < ss.size(); i++) {
                    Example e = enc.get(i);
                    // The encoder labels each word's first sub-token (Hugging Face's convention). A causal model
                    // has seen the whole word only at its last sub-token, so the label moves there.
                    int[] first = e.labels(), lab = new int[first.length], where = new int[ss.get(i).tags().size()];
                    java.util.Arrays.fill(lab, Example.IGNORE);
                    int w = 0;
                    for (int t = 0; t < first.length; t++) {
                        if (first[t] < 0) continue;
                        int last = t;
                        while (last + 1 < first.length && first[last + 1] < 0) last++;
                        where[w++] = last;
                        String name = union.name(first[t]);
                        Integer id = trainId.get(name);
                        if (id == null) unknown.add(name);
                        lab[last] = id == null ? Example.IGNORE : id;
                    }
                    ex.add(new Example(e.ids(), lab, -1));
                    gold.add(ss.get(i).tags());
                    pos.add(where);
                }
            }
            case SEQUENCE_CLASSIFICATION -> {
                List<TextClassificationReader.LabeledText> ts = TextClassificationReader.read(file, cols);
                for (var t : ts)
                    if (t.isList() != (problem == Problem.MULTI_LABEL))
                        throw new WaferException(t.where() + ": field \"" + cols.label() + "\" is " + (t.isList()
                                ? "a list; lists of labels need --problem-type multi_label_classification"
                                : "not a list; --problem-type multi_label_classification takes a list of labels per example"));
                if (problem != Problem.SINGLE_LABEL) {
                    labels = problem == Problem.REGRESSION ? List.of(REGRESSION_LABEL)
                            : trainLabels != null ? trainLabels : TextClassificationReader.labels(ts).names();
                    java.util.Map<String, Integer> trainId = index(labels);
                    for (var t : ts) {
                        int[] ids = TaskEncoder.text(tok, t.text(), t.pair());
                        if (ids.length == 0) throw new WaferException(t.where() + ": empty text");
                        float[] values = new float[labels.size()];
                        if (problem == Problem.REGRESSION) values[0] = number(t.label(), cols.label(), t.where());
                        else for (String l : t.labels()) {
                            Integer id = trainId.get(l);
                            if (id == null) unknown.add(l);
                            else values[id] = 1;
                        }
                        ex.add(new Example(ids, null, -1, values));
                        gold.add(problem == Problem.REGRESSION ? List.of(Float.toString(values[0])) : t.labels());
                        pos.add(new int[] {Math.min(ids.length, maxLength) - 1});
                    }
                    break;
                }
                labels = trainLabels != null ? trainLabels : TextClassificationReader.labels(ts).names();
                java.util.Map<String, Integer> trainId = index(labels);
                Set<String> all = new LinkedHashSet<>(labels);
                for (var t : ts) all.add(t.label());
                LabelSet union = new LabelSet(all);
                List<Example> enc = TaskEncoder.sequenceClassification(tok, ts, union);
                for (int i = 0; i < ts.size(); i++) {
                    String name = ts.get(i).label();
                    Integer id = trainId.get(name);
                    if (id == null) unknown.add(name);
                    Example e = enc.get(i);
                    if (e.ids().length == 0) throw new WaferException(ts.get(i).where() + ": empty text");
                    ex.add(new Example(e.ids(), null, id == null ? Example.IGNORE : id));
                    gold.add(List.of(name));
                    pos.add(new int[] {Math.min(e.ids().length, maxLength) - 1});
                }
            }
            default -> {
                List<ChatReader.Conversation> cs = ChatReader.read(file);
                labels = List.of();
                ex.addAll(TaskEncoder.chat(tok, cs));
            }
        }
        int truncated = 0;
        for (Example e : ex) if (e.length() > maxLength) truncated++;
        return new TaskData(task, List.copyOf(ex), List.copyOf(gold), List.copyOf(pos), List.copyOf(labels), unknown, truncated, file.toString());
    }

    /** The one "label" of a regression model (Hugging Face's name for a lone output). */
    public static final String REGRESSION_LABEL = "LABEL_0";

    private static float number(String s, String field, String where) {
        try {
            float v = Float.parseFloat(s);
            if (Float.isFinite(v)) return v;
        } catch (NumberFormatException e) { /* reported below */ }
        throw new WaferException(where + ": field \"" + field + "\" must be a finite number for regression, got '" + s + "'");
    }

    private static java.util.Map<String, Integer> index(List<String> labels) {
        java.util.Map<String, Integer> m = new java.util.HashMap<>();
        for (int i = 0; i < labels.size(); i++) m.put(labels.get(i), i);
        return m;
    }

    /** The warnings a user should see about this file: unknown labels, truncated examples. */
    public List<String> warnings(int maxLength) {
        List<String> w = new ArrayList<>();
        if (!unknownLabels.isEmpty())
            w.add(file + ": " + unknownLabels.size() + " label(s) the training file lacks: " + unknownLabels
                    + "; they take no loss and count as errors when scored (the model cannot predict them)");
        if (truncated > 0)
            w.add(file + ": " + truncated + " example(s) longer than " + maxLength + " tokens are truncated"
                    + (task == Task.TOKEN_CLASSIFICATION ? "; their cut-off words count as errors when scored"
                    : task == Task.SEQUENCE_CLASSIFICATION ? " (classified from their first " + maxLength + " tokens)" : ""));
        return w;
    }

    /** A random sample of {@code n} examples (all of them when n is 0 or not below their count), kept in file order. */
    public TaskData sample(int n, long seed) {
        if (n <= 0 || n >= examples.size()) return this;
        Integer[] idx = new Integer[examples.size()];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        Collections.shuffle(Arrays.asList(idx), new Random(seed));
        Arrays.sort(idx, 0, n); // keep file order within the sample
        List<Example> ex = new ArrayList<>();
        List<List<String>> g = new ArrayList<>();
        List<int[]> pos = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ex.add(examples.get(idx[i]));
            if (!gold.isEmpty()) { g.add(gold.get(idx[i])); pos.add(positions.get(idx[i])); }
        }
        return new TaskData(task, ex, g, pos, labels, unknownLabels, truncated, file + " (" + n + " sampled)");
    }
}
