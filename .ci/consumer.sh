#!/usr/bin/env bash
# The library as a user gets it (README, "The Java API"): install the modules from this checkout, then build a
# new project that depends on wafer-core by the README's coordinates and compiles the README's Java example, and
# check that the core brings no server, command-line, chart, PDF or test library with it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. tools/find-java.sh
JAVA_HOME="$(find_java)" || exit 1
export JAVA_HOME
./mvnw -B -q install -DskipTests
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the README's blocks: the first ```xml and the first ```java after the "### The Java API" heading
section=$(sed -n '/^### The Java API/,/^## /p' README.md)
block() { awk -v lang="$1" '$0 == "```" lang {on = 1; next} on && $0 == "```" {exit} on' <<<"$section"; }
dependency=$(block xml)
example=$(block java)
[ -n "$dependency" ] && [ -n "$example" ] || { echo "consumer: README's Java API section lacks its xml or java block" >&2; exit 1; }
class=$(sed -nE 's/^public class ([A-Za-z0-9_]+).*/\1/p' <<<"$example")
mkdir -p "$work/src/main/java"
printf '%s\n' "$example" > "$work/src/main/java/$class.java"
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>consumer</artifactId>
  <version>1</version>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencies>
$dependency
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-compiler-plugin</artifactId>
        <version>3.14.0</version>
        <configuration>
          <release>25</release>
          <compilerArgs><arg>--add-modules</arg><arg>jdk.incubator.vector</arg></compilerArgs>
        </configuration>
      </plugin>
    </plugins>
  </build>
</project>
POM
cd "$work"
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" # as the checkout's .mvn/jvm.config: Maven's Guava on JDK 25
mvn -B -q compile
mvn -B -q dependency:list -DincludeScope=runtime -DoutputFile="$work/deps.txt" >/dev/null
if grep -Ei 'io\.javalin|org\.eclipse\.jetty|info\.picocli|org\.knowm|pdfbox|org\.junit|:junit:|wafer-serve|wafer-cli' "$work/deps.txt"; then
  echo "consumer: wafer-core brings the libraries above" >&2
  exit 1
fi
# and it runs: the example's class starts on the JVM flags the README names (no model given: it must say so)
mvn -B -q dependency:build-classpath -Dmdep.outputFile="$work/cp.txt" >/dev/null
cp="$(cat "$work/cp.txt"):target/classes"
out=$("$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$cp" "$class" "$work/no-model" "$work/no-shards" "$work/out" 2>&1 || true)
grep -q 'no-model' <<<"$out" || { echo "consumer: the example did not reach Checkpoint.load:" >&2; echo "$out" >&2; exit 1; }
echo "consumer: $class compiled and ran against wafer-core alone ($(grep -c . "$work/deps.txt") lines of dependencies, none of server, CLI, charts or tests)"
