package ai.wafer.serve;

import ai.wafer.data.ChatReader;
import ai.wafer.generate.ChatTemplate;
import ai.wafer.generate.SamplingParams;
import ai.wafer.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Reads OpenAI-style completion and chat requests into a prompt and sampling parameters, checking
 * every field's type and range (the sampling ranges are {@link SamplingParams}') so that bad input
 * becomes a 400 naming the field, never a 500.
 * Beyond OpenAI's fields: {@code top_k}, {@code min_p}, {@code repetition_penalty}.
 */
final class OpenAiRequests {
    /** A validated request. */
    /** A request: its prompt, how to sample, whether to stream, and how many choices ({@code n}). */
    record Parsed(int[] prompt, SamplingParams params, boolean stream, int n, int logprobs) {}

    /** The limits of one server. */
    record Limits(int context, int vocabSize, int maxPromptTokens, int maxTokens) {}

    private static final Set<String> COMMON = Set.of("model", "max_tokens", "temperature", "top_p", "n", "stream", "stop",
            "seed", "presence_penalty", "frequency_penalty", "user", "top_k", "min_p", "repetition_penalty", "logit_bias",
            "stream_options");
    private static final Set<String> COMPLETION = Set.of("prompt", "echo", "logprobs", "best_of", "suffix");
    private static final Set<String> CHAT = Set.of("messages", "max_completion_tokens", "logprobs", "top_logprobs",
            "response_format", "parallel_tool_calls");

    private OpenAiRequests() {}

    static Parsed completion(ObjectNode body, Tokenizer tok, Limits lim) {
        checkFields(body, COMPLETION);
        JsonNode p = body.get("prompt");
        int[] prompt;
        if (p == null || p.isNull()) throw ApiException.bad("you must provide a prompt", "prompt");
        if (p.isTextual()) prompt = encode(tok, p.asText());
        else if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) prompt = encode(tok, p.get(0).asText());
        else if (p.isArray() && p.size() > 0 && allInts(p)) prompt = tokenIds(p, lim.vocabSize(), "prompt");
        else throw ApiException.bad("prompt must be a string or an array of token ids (one prompt per request)", "prompt");
        if (bool(body, "echo", false)) throw ApiException.bad("echo is not supported", "echo");
        int lp = body.hasNonNull("logprobs") ? integer(body, "logprobs", 0) : -1; // the top alternatives per token
        if (lp > 5) throw ApiException.bad("logprobs must be in [0, 5], got " + lp, "logprobs");
        if (body.hasNonNull("suffix")) throw ApiException.bad("suffix is not supported", "suffix");
        int bestOf = integer(body, "best_of", 1);
        if (bestOf != 1) throw ApiException.bad("best_of must be 1", "best_of");
        return finish(body, tok, prompt, "prompt", lim, integerOrNull(body, "max_tokens"), 16, List.of(), lp);
    }

    static Parsed chat(ObjectNode body, Tokenizer tok, ChatTemplate template, Limits lim) {
        checkFields(body, CHAT);
        if (tok == null) throw new ApiException(400, "this model has no tokenizer, so it cannot chat", "messages", "model_not_supported");
        JsonNode ms = body.get("messages");
        if (ms == null || !ms.isArray() || ms.isEmpty()) throw ApiException.bad("messages must be a non-empty array", "messages");
        List<ChatReader.Message> list = new ArrayList<>();
        for (int i = 0; i < ms.size(); i++) {
            JsonNode m = ms.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) throw ApiException.bad(where + " must be an object", where);
            if (!m.path("role").isTextual()) throw ApiException.bad(where + ".role must be a string", where + ".role");
            String role = m.get("role").asText();
            if (role.equals("developer")) role = "system";
            if (!Set.of("system", "user", "assistant").contains(role))
                throw ApiException.bad(where + ".role must be system, user or assistant, got '" + role + "'", where + ".role");
            list.add(new ChatReader.Message(role, content(m.get("content"), where + ".content")));
        }
        int lp = bool(body, "logprobs", false) ? integer(body, "top_logprobs", 0) : -1;
        if (lp > 20 || !bool(body, "logprobs", false) && body.hasNonNull("top_logprobs"))
            throw ApiException.bad("top_logprobs must be in [0, 20], and needs logprobs: true", "top_logprobs");
        Integer max = integerOrNull(body, "max_completion_tokens");
        if (max == null) max = integerOrNull(body, "max_tokens");
        int[] prompt;
        try {
            prompt = template.render(tok, list);
        } catch (ai.wafer.WaferException e) { // a template's raise_exception, or one that does not render
            throw ApiException.bad(e.getMessage(), "messages");
        }
        return finish(body, tok, prompt, "messages", lim, max, -1, template.stops(), lp);
    }

    /** Message content: a string, or an array of {type: text, text} parts. */
    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) return "";
        if (c.isTextual()) return c.asText();
        if (c.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : c) {
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual())
                    throw ApiException.bad(where + " parts must be {\"type\": \"text\", \"text\": ...}", where);
                sb.append(part.get("text").asText());
            }
            return sb.toString();
        }
        throw ApiException.bad(where + " must be a string", where);
    }

    /** The checks and parameters common to both endpoints; {@code promptField} is where the prompt came from (prompt, messages). */
    private static Parsed finish(ObjectNode body, Tokenizer tok, int[] prompt, String promptField, Limits lim, Integer maxTokens,
                                 int dflt, List<String> extraStops, int logprobs) {
        if (prompt.length == 0) throw ApiException.bad("the prompt is empty", promptField);
        if (prompt.length > lim.maxPromptTokens() || prompt.length >= lim.context())
            throw new ApiException(400, "the prompt has " + prompt.length + " tokens, more than this server allows ("
                    + Math.min(lim.maxPromptTokens(), lim.context() - 1) + "; the model's context is " + lim.context() + ")",
                    promptField, "context_length_exceeded");
        int room = lim.context() - prompt.length;
        int max;
        if (maxTokens == null) max = Math.min(dflt < 0 ? room : dflt, Math.min(room, lim.maxTokens()));
        else {
            max = maxTokens;
            if (max < 0) throw ApiException.bad("max_tokens must not be negative, got " + max, "max_tokens");
            if (max > lim.maxTokens()) throw ApiException.bad("max_tokens is " + max + ", more than this server's limit of " + lim.maxTokens(), "max_tokens");
            if (max > room)
                throw new ApiException(400, "this model's maximum context length is " + lim.context() + " tokens; you requested "
                        + (prompt.length + max) + " (" + prompt.length + " in the prompt, " + max + " in the completion)",
                        "max_tokens", "context_length_exceeded");
        }
        int n = integer(body, "n", 1);
        if (n < 1 || n > 128) throw ApiException.bad("n must be in [1, 128], got " + n, "n");
        for (String f : new String[] {"presence_penalty", "frequency_penalty"}) {
            double v = number(body, f, 0);
            if (v != 0) throw ApiException.bad(f + " is not supported (use repetition_penalty)", f);
        }
        if (body.hasNonNull("logit_bias") && !body.get("logit_bias").isObject()) throw ApiException.bad("logit_bias must be an object", "logit_bias");
        if (body.hasNonNull("logit_bias") && !body.get("logit_bias").isEmpty()) throw ApiException.bad("logit_bias is not supported", "logit_bias");
        if (body.has("user") && !body.get("user").isTextual() && !body.get("user").isNull()) throw ApiException.bad("user must be a string", "user");
        if (body.has("model") && !body.get("model").isTextual() && !body.get("model").isNull()) throw ApiException.bad("model must be a string", "model");
        // types here; ranges in SamplingParams, the one check of sampling parameters, whose refusal names the field
        float temperature = real(body, "temperature", 1), topP = real(body, "top_p", 1), minP = real(body, "min_p", 0);
        float rep = real(body, "repetition_penalty", 1);
        int topK = integer(body, "top_k", 0);
        List<String> stops = new ArrayList<>(extraStops);
        JsonNode s = body.get("stop");
        if (s != null && !s.isNull()) {
            if (s.isTextual()) stops.add(s.asText());
            else if (s.isArray() && s.size() <= 4) for (JsonNode x : s) {
                if (!x.isTextual()) throw ApiException.bad("stop must be a string or an array of up to 4 strings", "stop");
                stops.add(x.asText());
            }
            else throw ApiException.bad("stop must be a string or an array of up to 4 strings", "stop");
        }
        stops.removeIf(String::isEmpty);
        if (!stops.isEmpty() && tok == null) throw ApiException.bad("stop strings need a tokenizer, and this model has none", "stop");
        Long seed = null;
        if (body.hasNonNull("seed")) {
            if (!body.get("seed").isIntegralNumber() || !body.get("seed").canConvertToLong()) throw ApiException.bad("seed must be an integer", "seed");
            seed = body.get("seed").asLong();
        }
        boolean stream = bool(body, "stream", false);
        if (body.hasNonNull("stream_options") && !body.get("stream_options").isObject()) throw ApiException.bad("stream_options must be an object", "stream_options");
        List<Integer> stopIds = tok != null && tok.eot() >= 0 ? List.of(tok.eot()) : List.of();
        try {
            return new Parsed(prompt, new SamplingParams(max, temperature, topK, topP, minP, rep, stops, stopIds, seed, 1), stream, n, logprobs);
        } catch (SamplingParams.Invalid e) {
            throw ApiException.bad(e.getMessage(), e.field);
        }
    }

    private static int[] encode(Tokenizer tok, String text) {
        if (tok == null) throw ApiException.bad("this model has no tokenizer: give the prompt as an array of token ids", "prompt");
        return tok.encode(text);
    }

    /** An array of token ids, each checked to be in [0, vocabSize). */
    static int[] tokenIds(JsonNode a, int vocabSize, String field) {
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode x = a.get(i);
            ids[i] = x.isIntegralNumber() && x.canConvertToInt() ? x.asInt() : -1;
            if (ids[i] < 0 || ids[i] >= vocabSize)
                throw ApiException.bad(field + "[" + i + "] = " + x + " is not a token id in [0, " + vocabSize + ")", field);
        }
        return ids;
    }

    private static boolean allInts(JsonNode a) {
        for (JsonNode x : a) if (!x.isIntegralNumber() || !x.canConvertToInt()) return false;
        return true;
    }

    private static void checkFields(ObjectNode body, Set<String> specific) {
        for (var it = body.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!COMMON.contains(f) && !specific.contains(f))
                throw new ApiException(400, "Unrecognized request argument supplied: " + f, f, "unknown_parameter");
        }
    }

    static double number(JsonNode body, String f, double dflt) {
        JsonNode v = body.get(f);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber() || !Double.isFinite(v.asDouble())) throw ApiException.bad(f + " must be a number, got " + v, f);
        return v.asDouble();
    }

    /** A number as the float it is used as: one that a float holds only as a subnormal, zero or infinity (1e-40, 1e39) is refused, not changed. */
    static float real(JsonNode body, String f, double dflt) {
        double v = number(body, f, dflt);
        float x = (float) v;
        if (v != 0 && (Math.abs(x) < Float.MIN_NORMAL || Float.isInfinite(x)))
            throw ApiException.bad(f + " = " + v + " is outside the normal range of a 32-bit float (1.2e-38 to 3.4e38)", f);
        return x;
    }

    static int integer(JsonNode body, String f, int dflt) {
        Integer v = integerOrNull(body, f);
        return v == null ? dflt : v;
    }

    static Integer integerOrNull(JsonNode body, String f) {
        JsonNode v = body.get(f);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw ApiException.bad(f + " must be an integer, got " + v, f);
        return v.asInt();
    }

    static boolean bool(JsonNode body, String f, boolean dflt) {
        JsonNode v = body.get(f);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw ApiException.bad(f + " must be true or false, got " + v, f);
        return v.asBoolean();
    }
}
