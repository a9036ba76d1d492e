package ai.wafer.data;

import ai.wafer.tokenizer.Tokenizer;
import com.knuddels.jtokkit.api.IntArrayList;

import java.util.List;

/** Turns task records into {@link Example}s of token ids. */
public final class TaskEncoder {
    private TaskEncoder() {}

    /**
     * Each word is encoded with a leading space (" word", as GPT-2 sees words inside text, and as Hugging
     * Face's {@code add_prefix_space=True} does); the word's tag goes on its first sub-token, the others get
     * {@link Example#IGNORE}.
     */
    public static Example tokenClassification(Tokenizer tok, ConllReader.Sentence s, LabelSet tags) {
        IntArrayList ids = new IntArrayList(), labels = new IntArrayList();
        for (int w = 0; w < s.words().size(); w++) {
            int[] sub = tok.encodeOrdinary(" " + s.words().get(w));
            int tag = tags.id(s.tags().get(w), s.where() + " (word " + (w + 1) + ")");
            for (int i = 0; i < sub.length; i++) {
                ids.add(sub[i]);
                labels.add(i == 0 ? tag : Example.IGNORE);
            }
        }
        return new Example(ids.toArray(), labels.toArray(), -1);
    }

    public static Example sequenceClassification(Tokenizer tok, TextClassificationReader.LabeledText t, LabelSet labels) {
        return new Example(text(tok, t.text(), t.pair()), null, labels.id(t.label(), t.where()));
    }

    /**
     * A text to classify, or a sentence pair: the first text, {@code <|endoftext|>}, the second. GPT-2 has no
     * separator token and Hugging Face's GPT2Tokenizer joins a pair with nothing between; the end-of-text token
     * marks where the first text ends (training, evaluation and serving all encode through here).
     */
    public static int[] text(Tokenizer tok, String text, String pair) {
        int[] a = tok.encodeOrdinary(text);
        if (pair == null) return a;
        int[] b = tok.encodeOrdinary(pair), ids = java.util.Arrays.copyOf(a, a.length + 1 + b.length);
        ids[a.length] = tok.eot();
        System.arraycopy(b, 0, ids, a.length + 1, b.length);
        return ids;
    }

    /**
     * Renders a conversation with a plain-text template (Cerebras-GPT has no chat format of its own):
     * each turn is {@code "### <Role>:\n<content>\n\n"} (Role = System, User or Assistant) and each assistant
     * turn ends with {@code <|endoftext|>} instead of the blank line, so generation knows where to stop.
     * Loss is taken only on assistant contents and their {@code <|endoftext|>}; headers and other turns are
     * {@link Example#IGNORE}. Labels are the ids themselves (the training loop shifts them).
     */
    public static Example chat(Tokenizer tok, ChatReader.Conversation c) {
        IntArrayList ids = new IntArrayList(), labels = new IntArrayList();
        for (ChatReader.Message m : c.messages()) {
            String role = Character.toUpperCase(m.role().charAt(0)) + m.role().substring(1);
            append(tok.encodeOrdinary("### " + role + ":\n"), false, ids, labels);
            if (m.isAssistant()) {
                append(tok.encodeOrdinary(m.content()), true, ids, labels);
                append(new int[] {tok.eot()}, true, ids, labels);
            } else {
                append(tok.encodeOrdinary(m.content() + "\n\n"), false, ids, labels);
            }
        }
        return new Example(ids.toArray(), labels.toArray(), -1);
    }

    /** Encodes a list on all cores (token classification). */
    public static List<Example> tokenClassification(Tokenizer tok, List<ConllReader.Sentence> ss, LabelSet tags) {
        return ss.parallelStream().map(s -> tokenClassification(tok, s, tags)).toList();
    }

    public static List<Example> sequenceClassification(Tokenizer tok, List<TextClassificationReader.LabeledText> ts, LabelSet labels) {
        return ts.parallelStream().map(t -> sequenceClassification(tok, t, labels)).toList();
    }

    public static List<Example> chat(Tokenizer tok, List<ChatReader.Conversation> cs) {
        return cs.parallelStream().map(c -> chat(tok, c)).toList();
    }

    private static void append(int[] t, boolean loss, IntArrayList ids, IntArrayList labels) {
        for (int id : t) {
            ids.add(id);
            labels.add(loss ? id : Example.IGNORE);
        }
    }
}
