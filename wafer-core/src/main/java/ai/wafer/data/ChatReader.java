package ai.wafer.data;

import ai.wafer.WaferException;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Instruction / chat data, JSONL, either form on any line:
 * {@code {"prompt": ..., "response": ...}} (read as a user turn and an assistant turn) or
 * {@code {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}} with at least one
 * assistant turn.
 */
public final class ChatReader {
    public record Message(String role, String content) {
        public boolean isAssistant() { return "assistant".equals(role); }
    }

    /** One conversation; {@code where} is "file:line". */
    public record Conversation(List<Message> messages, String where) {}

    private ChatReader() {}

    public static List<Conversation> read(Path file) {
        List<Conversation> out = new ArrayList<>();
        List<String> lines = JsonLines.lines(file);
        for (int i = 0; i < lines.size(); i++)
            if (!lines.get(i).isBlank()) out.add(parse(lines.get(i), file + ":" + (i + 1)));
        if (out.isEmpty()) throw new WaferException(file + ": no conversations");
        return out;
    }

    static Conversation parse(String line, String where) {
        JsonNode o = JsonLines.parse(line, where);
        if (o.has("messages")) {
            JsonNode ms = o.get("messages");
            if (!ms.isArray() || ms.isEmpty()) throw new WaferException(where + ": \"messages\" must be a non-empty array");
            List<Message> list = new ArrayList<>();
            boolean assistant = false;
            for (int i = 0; i < ms.size(); i++) {
                JsonNode m = ms.get(i);
                if (!m.path("role").isTextual() || !m.path("content").isTextual())
                    throw new WaferException(where + ": messages[" + i + "] needs string fields \"role\" and \"content\"");
                String role = m.get("role").asText();
                if (!role.equals("system") && !role.equals("user") && !role.equals("assistant"))
                    throw new WaferException(where + ": messages[" + i + "] has role \"" + role + "\"; expected system, user or assistant");
                assistant |= role.equals("assistant");
                list.add(new Message(role, m.get("content").asText()));
            }
            if (!assistant) throw new WaferException(where + ": no assistant message, so nothing to learn");
            return new Conversation(List.copyOf(list), where);
        }
        if (o.path("prompt").isTextual() && o.path("response").isTextual())
            return new Conversation(List.of(new Message("user", o.get("prompt").asText()),
                    new Message("assistant", o.get("response").asText())), where);
        throw new WaferException(where + ": expected {\"prompt\", \"response\"} strings or a \"messages\" array");
    }
}
