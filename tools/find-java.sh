# Sourced by ./wafer and ./mvnw, so both pick the same JDK: find_java prints the home of the first
# JDK 25 or newer among WAFER_JAVA_HOME, JAVA_HOME and the usual Debian install paths, or fails
# saying so. Call it as `JAVA_HOME="$(find_java)" || exit 1` (a failure inside $(...) under `export`
# would otherwise be lost).
find_java() {
  local j v
  for j in "${WAFER_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/jdk-25*; do
    [ -n "$j" ] && [ -x "$j/bin/java" ] || continue
    v=$("$j/bin/java" -version 2>&1 | head -1 | sed -E 's/.*version "([0-9]+).*/\1/')
    [ "$v" -ge 25 ] 2>/dev/null && { echo "$j"; return 0; }
  done
  echo "${0##*/}: no JDK 25 or newer found; set JAVA_HOME to one" >&2
  return 1
}
