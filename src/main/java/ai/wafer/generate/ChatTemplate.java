package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.data.ChatReader;
import ai.wafer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * The plain-text chat format Wafer fine-tunes with (Cerebras-GPT has none of its own; see
 * {@code TaskEncoder.chat}): each turn is {@code "### Role:\n<content>\n\n"}, and an assistant turn
 * ends with {@code <|endoftext|>} instead. A prompt for the next answer ends with {@code "### Assistant:\n"}.
 * Contents are encoded as ordinary text, so a user cannot inject special tokens.
 */
public final class ChatTemplate {
    /** Generation stops here too, in case a model not tuned on the format goes on to write the next turn. */
    public static final List<String> STOPS = List.of("\n### ");

    private ChatTemplate() {}

    public static int[] render(Tokenizer tok, List<ChatReader.Message> messages) {
        List<Integer> ids = new ArrayList<>();
        for (ChatReader.Message m : messages) {
            String role = switch (m.role()) {
                case "system" -> "System";
                case "user" -> "User";
                case "assistant" -> "Assistant";
                default -> throw new WaferException("message role must be system, user or assistant, got \"" + m.role() + "\"");
            };
            add(ids, tok.encodeOrdinary("### " + role + ":\n"));
            if (m.isAssistant()) {
                add(ids, tok.encodeOrdinary(m.content()));
                if (tok.eot() < 0) throw new WaferException("the tokenizer has no <|endoftext|> token to end assistant turns");
                ids.add(tok.eot());
            } else {
                add(ids, tok.encodeOrdinary(m.content() + "\n\n"));
            }
        }
        add(ids, tok.encodeOrdinary("### Assistant:\n"));
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static void add(List<Integer> ids, int[] t) { for (int i : t) ids.add(i); }
}
