package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.data.ChatReader;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * How a conversation becomes a prompt. A model's own template is Hugging Face's: the Jinja {@code chat_template} of
 * its {@code tokenizer_config.json}, rendered as {@code apply_chat_template(messages, add_generation_prompt=True)}
 * does (Jinjava, with trim_blocks and lstrip_blocks; {@code bos_token}, {@code eos_token} and
 * {@code raise_exception} defined), its special tokens recognised. Without one (Cerebras-GPT ships none) it is the
 * built-in plain-text format Wafer fine-tunes with ({@code TaskEncoder.chat}): each turn is
 * {@code "### Role:\n<content>\n\n"}, an assistant turn ending with {@code <|endoftext|>} instead, and the prompt
 * ends with {@code "### Assistant:\n"}; its contents are encoded as ordinary text, so a user cannot inject special
 * tokens. {@code --chat-template FILE} replaces either.
 */
public final class ChatTemplate {
    /** The built-in format; generation also stops at the next turn's header, for models not tuned on it. */
    public static final ChatTemplate BUILT_IN = new ChatTemplate(null, Map.of(), "the built-in ### Role: format");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String jinja;              // null: the built-in format
    private final Map<String, Object> tokens; // bos_token, eos_token, ... for the template
    /** Where the template came from, for logs. */
    public final String source;

    private ChatTemplate(String jinja, Map<String, Object> tokens, String source) {
        this.jinja = jinja;
        this.tokens = tokens;
        this.source = source;
    }

    /** The model's template from {@code dir/tokenizer_config.json} ({@code chat_template}), else {@link #BUILT_IN}. */
    public static ChatTemplate of(Path dir) {
        Path f = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(f)) return BUILT_IN;
        JsonNode cfg;
        try {
            cfg = JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new WaferException(f + ": not valid JSON: " + e.getMessage());
        }
        JsonNode t = cfg.path("chat_template");
        if (t.isArray()) // the named form: [{"name": "default", "template": ...}, ...]
            for (JsonNode named : t) if ("default".equals(named.path("name").asText())) t = named.path("template");
        if (t.isMissingNode() || t.isNull()) return BUILT_IN;
        if (!t.isTextual()) throw new WaferException(f + ": chat_template must be a string or a list with a \"default\" template");
        Map<String, Object> tokens = new HashMap<>();
        for (String k : List.of("bos_token", "eos_token", "unk_token", "pad_token")) {
            JsonNode v = cfg.path(k);
            if (v.isTextual()) tokens.put(k, v.asText());
            else if (v.path("content").isTextual()) tokens.put(k, v.path("content").asText()); // an AddedToken object
        }
        return new ChatTemplate(t.asText(), tokens, f + " (chat_template)");
    }

    /** A Jinja template from a file (--chat-template), with the special tokens of {@code tokenizerDir}'s config if any. */
    public static ChatTemplate read(Path file, Path tokenizerDir) {
        try {
            Map<String, Object> tokens = tokenizerDir == null ? Map.of() : of(tokenizerDir).tokens;
            return new ChatTemplate(Files.readString(file), tokens, file.toString());
        } catch (IOException e) {
            throw new WaferException("--chat-template " + file + ": cannot read it: " + e.getMessage());
        }
    }

    /** Strings generation stops before (besides <|endoftext|>). */
    public List<String> stops() { return jinja == null ? List.of("\n### ") : List.of(); }

    /** The prompt for the assistant's next turn. */
    public int[] render(Tokenizer tok, List<ChatReader.Message> messages) {
        if (jinja == null) return builtIn(tok, messages);
        List<Map<String, Object>> ms = new ArrayList<>();
        for (ChatReader.Message m : messages) ms.add(Map.of("role", m.role(), "content", m.content()));
        Map<String, Object> vars = new HashMap<>(Map.of("bos_token", "", "eos_token", tok.eot() < 0 ? "" : Tokenizer.EOT_TEXT));
        vars.putAll(tokens);
        vars.put("messages", ms);
        vars.put("add_generation_prompt", true);
        Jinjava j = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build());
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raise", String.class));
        REFUSED.remove();
        var result = j.renderForResult(jinja, vars);
        if (REFUSED.get() != null) throw new WaferException("the chat template refused the conversation: " + REFUSED.get());
        if (!result.getErrors().isEmpty())
            throw new WaferException("chat template " + source + ": " + result.getErrors().getFirst().getMessage());
        return tok.encode(result.getOutput());
    }

    /** The message of the template's raise_exception on this thread (Jinjava reports only that a function failed). */
    private static final ThreadLocal<String> REFUSED = new ThreadLocal<>();

    /** The template's raise_exception(message): a refusal of the conversation, reported to the caller by {@link #render}. */
    public static String raise(String message) {
        REFUSED.set(message);
        throw new IllegalArgumentException(message);
    }

    private static int[] builtIn(Tokenizer tok, List<ChatReader.Message> messages) {
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
