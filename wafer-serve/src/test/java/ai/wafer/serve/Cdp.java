package ai.wafer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/** Just enough of the Chrome DevTools Protocol to evaluate an expression in a headless page until it is non-empty. */
final class Cdp {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Cdp() {}

    static String waitFor(Path profile, Path log, String expression, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        Path portFile = profile.resolve("DevToolsActivePort");
        while (!Files.isRegularFile(portFile) || Files.readAllLines(portFile).isEmpty()) {
            if (System.nanoTime() > deadline) throw new AssertionError("chromium did not start:\n" + Files.readString(log));
            Thread.sleep(100);
        }
        int port = Integer.parseInt(Files.readAllLines(portFile).get(0).trim());
        HttpClient http = HttpClient.newHttpClient();
        String ws = null;
        while (ws == null) {
            JsonNode targets = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list")).build(),
                    HttpResponse.BodyHandlers.ofString()).body());
            for (JsonNode t : targets) if ("page".equals(t.path("type").asText())) ws = t.get("webSocketDebuggerUrl").asText();
            if (ws == null) Thread.sleep(100);
        }
        Reply reply = new Reply();
        WebSocket socket = http.newWebSocketBuilder().buildAsync(URI.create(ws), reply).get(10, TimeUnit.SECONDS);
        try {
            for (int id = 1; System.nanoTime() < deadline; id++) {
                reply.next = new CompletableFuture<>();
                String msg = JSON.createObjectNode().put("id", id).put("method", "Runtime.evaluate")
                        .set("params", JSON.createObjectNode().put("expression", expression).put("returnByValue", true)).toString();
                socket.sendText(msg, true).get(10, TimeUnit.SECONDS);
                JsonNode r = reply.next.get(10, TimeUnit.SECONDS);
                String v = r.at("/result/result/value").asText("");
                if (!v.isEmpty()) return v;
                Thread.sleep(200);
            }
            throw new AssertionError("the page did not get there in " + seconds + " s");
        } finally {
            socket.abort();
        }
    }

    /** Collects the replies to our commands (messages with an id), skipping events. */
    private static final class Reply implements WebSocket.Listener {
        volatile CompletableFuture<JsonNode> next = new CompletableFuture<>();
        private final StringBuilder buf = new StringBuilder();

        @Override public CompletionStage<?> onText(WebSocket w, CharSequence data, boolean last) {
            buf.append(data);
            if (last) {
                try {
                    JsonNode n = JSON.readTree(buf.toString());
                    if (n.has("id")) next.complete(n);
                } catch (Exception e) {
                    next.completeExceptionally(e);
                }
                buf.setLength(0);
            }
            w.request(1);
            return null;
        }
    }
}
