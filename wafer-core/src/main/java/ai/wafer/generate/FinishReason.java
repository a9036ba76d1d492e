package ai.wafer.generate;

/** Why a generation ended, named as OpenAI's API names it. */
public enum FinishReason {
    /** A stop token or stop string. */
    STOP("stop"),
    /** The token limit or the end of the context. */
    LENGTH("length");

    public final String api;
    FinishReason(String api) { this.api = api; }
}
