package ai.wafer.eval;

/** Tagging schemes for entity spans; the prefix letters each one allows. */
public enum Tagging {
    /** I- marks entity tokens; B- only starts an entity that directly follows one of the same type. */
    IOB1("BIO"),
    /** BIO: B- starts every entity, I- continues it. */
    IOB2("BIO"),
    /** B- begin, I- inside, E- end, S- single-token entity. */
    IOBES("BIOES");

    private final String prefixes;

    Tagging(String prefixes) { this.prefixes = prefixes; }

    public boolean allows(char prefix) { return prefixes.indexOf(prefix) >= 0; }
}
