package ai.wafer;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * wafer-core is the library a service embeds: its class path (the tests' too) holds no server, command-line, chart or
 * PDF library. A dependency added to the core that pulls one in fails here (the full check, a consumer project built
 * from the README's coordinates, is .ci/consumer.sh).
 */
class CoreDependenciesTest {
    @Test void noServerCliOrChartLibraryOnTheCoreClassPath() {
        for (String c : new String[] {"io.javalin.Javalin", "org.eclipse.jetty.server.Server", "picocli.CommandLine",
                "org.knowm.xchart.XYChart", "org.apache.pdfbox.pdmodel.PDDocument", "io.prometheus.metrics.core.metrics.Counter"})
            assertThrows(ClassNotFoundException.class, () -> Class.forName(c, false, getClass().getClassLoader()), c);
    }
}
