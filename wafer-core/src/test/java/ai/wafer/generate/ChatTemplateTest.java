package ai.wafer.generate;

import ai.wafer.WaferException;
import ai.wafer.data.ChatReader;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hugging Face chat templates from a tokenizer_config.json render as transformers' apply_chat_template does: the
 * expected prompts were rendered by Python's jinja2 (tools/make_chat_template_cases.py) for ChatML, Zephyr and
 * Llama 2's templates (whitespace control, loop variables, slicing, raise_exception).
 */
class ChatTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path tmp;

    private static List<ChatReader.Message> messages(JsonNode ms) {
        List<ChatReader.Message> out = new ArrayList<>();
        for (JsonNode m : ms) out.add(new ChatReader.Message(m.get("role").asText(), m.get("content").asText()));
        return out;
    }

    /** A tokenizer directory whose tokenizer_config.json carries {@code template}. */
    private Path dir(String name, String template, JsonNode cases) throws Exception {
        Path d = Files.createDirectories(tmp.resolve(name));
        ObjectNode cfg = JSON.createObjectNode().put("chat_template", template);
        cfg.set("bos_token", cases.get("bos_token"));
        cfg.putObject("eos_token").put("content", cases.get("eos_token").asText()); // the AddedToken form
        JSON.writeValue(d.resolve("tokenizer_config.json").toFile(), cfg);
        return d;
    }

    @Test
    void realTemplatesRenderAsJinja2Does() throws Exception {
        JsonNode all = JSON.readTree(Fixtures.FIXTURES.resolve("chat-templates/cases.json").toFile());
        Tokenizer tok = Tokenizer.load(Path.of("data/gpt2-tokenizer"));
        for (JsonNode c : all.get("cases")) {
            ChatTemplate t = ChatTemplate.of(dir(c.get("template").asText(), c.get("source").asText(), all));
            assertTrue(t.source.endsWith("(chat_template)"), t.source);
            assertEquals(c.get("expected").asText(), tok.decode(t.render(tok, messages(c.get("messages")))), c.get("template").asText());
            assertEquals(List.of(), t.stops());
        }
        JsonNode bad = all.get("refused");
        ChatTemplate llama = ChatTemplate.of(dir("refusing", bad.get("source").asText(), all));
        WaferException e = assertThrows(WaferException.class, () -> llama.render(tok, messages(bad.get("messages"))));
        assertTrue(e.getMessage().contains(bad.get("message").asText()), e.getMessage());
    }

    @Test
    void withoutATemplateTheBuiltInFormatAndAFileOverridesIt() throws Exception {
        Tokenizer tok = Tokenizer.load(Path.of("data/gpt2-tokenizer"));
        assertSame(ChatTemplate.BUILT_IN, ChatTemplate.of(tmp));
        List<ChatReader.Message> ms = List.of(new ChatReader.Message("user", "Hi"));
        assertEquals("### User:\nHi\n\n### Assistant:\n", tok.decode(ChatTemplate.BUILT_IN.render(tok, ms)));
        Path f = tmp.resolve("t.jinja");
        Files.writeString(f, "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{{ eos_token }}{% endfor %}> ");
        assertEquals("[user] Hi<|endoftext|>> ", tok.decode(ChatTemplate.read(f, null).render(tok, ms)));
        int[] ids = ChatTemplate.read(f, null).render(tok, ms);
        assertTrue(java.util.Arrays.stream(ids).anyMatch(i -> i == tok.eot()), "the template's special tokens are tokens");
    }
}
