package ai.wafer.serve;

/** A request the API refuses, answered as OpenAI does: {@code {"error": {"message", "type", "param", "code"}}}. */
final class ApiException extends RuntimeException {
    final int status;
    final String type, param, code;

    ApiException(int status, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = status == 401 ? "authentication_error" : status >= 500 ? "server_error"
                : status == 429 ? "rate_limit_error" : "invalid_request_error";
        this.param = param;
        this.code = code;
    }

    static ApiException bad(String message, String param) { return new ApiException(400, message, param, null); }
}
