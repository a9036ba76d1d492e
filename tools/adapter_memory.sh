#!/usr/bin/env bash
# Memory of `wafer serve` with 1 and with N adapters over one base (issue 16: the base is counted once).
# Usage: tools/adapter_memory.sh BASE_DIR ADAPTER_DIR [N=16]
# Copies ADAPTER_DIR N times under a temporary --adapter-root (each copy loads as its own adapter), starts the server
# with 1, then N, of them, runs a full GC, and prints the resident set (VmRSS: RssAnon, the process's own memory, and
# RssFile, the mapped checkpoint, shared through the page cache) and the used Java heap.
set -euo pipefail
base=$1 adapter=$2 n=${3:-16}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/tools/find-java.sh"
jcmd="$(find_java)/bin/jcmd"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
for i in $(seq 0 $((n - 1))); do cp -r "$adapter" "$root/a$i"; done
echo "| adapters | VmRSS MiB | RssAnon MiB | RssFile MiB | heap used MiB |"
echo "|---|---|---|---|---|"
for k in 1 "$n"; do
  args=()
  for i in $(seq 0 $((k - 1))); do args+=(--adapter "a$i=$root/a$i"); done
  port=$((18000 + k))
  "$here/wafer" serve --model "$base" "${args[@]}" --adapter-root "$root" --port "$port" 2>"$root/log" &
  launcher=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
  curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model": "a0", "prompt": "Hello", "max_tokens": 4}' >/dev/null # one request: the decode path's buffers exist
  pid=$(pgrep -P "$launcher" java || echo "$launcher") # ./wafer execs java, so usually the same process
  "$jcmd" "$pid" GC.run >/dev/null
  sleep 1
  heap=$("$jcmd" "$pid" GC.heap_info | awk '/PSYoungGen|ParOldGen/ {for (i = 1; i < NF; i++) if ($i == "used") {v = $(i+1); sub(/K.*/, "", v); s += v}} END {print s}')
  awk -v k="$k" -v h="$heap" '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2}
    END {printf "| %d | %.0f | %.0f | %.0f | %.0f |\n", k, r / 1024, a / 1024, f / 1024, h / 1024}' "/proc/$pid/status"
  kill "$pid"
  wait "$launcher" 2>/dev/null || true
done
