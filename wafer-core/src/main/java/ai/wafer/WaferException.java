package ai.wafer;

/** A user-facing error: its message says what is wrong and where; the CLI prints it without a stack trace. */
public class WaferException extends RuntimeException {
    public WaferException(String message) { super(message); }
    public WaferException(String message, Throwable cause) { super(message, cause); }
}
