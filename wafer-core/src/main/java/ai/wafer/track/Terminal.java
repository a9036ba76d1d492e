package ai.wafer.track;

/** Whether output goes to a person at a terminal (progress bars) or to a file or CI log (plain lines). */
public final class Terminal {
    private Terminal() {}

    public static boolean interactive() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }
}
