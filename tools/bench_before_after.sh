#!/usr/bin/env bash
# Before/after benchmarks, back to back on an idle machine: `wafer bench train` on the three shapes of BENCHMARKS.md
# and `wafer bench generate`, for an older checkout (BEFORE, built with ./wafer once) and this one, alternating, each
# round with PyTorch's figure of the same shape (../shared/bench/torch_gpt_bench.py, /usr/bin/python3 with torch).
# Usage: tools/bench_before_after.sh BEFORE_DIR [ROUNDS] > results.txt
#   e.g. git worktree add ../before 0c762be && tools/bench_before_after.sh ../before 2
set -u
B=$(cd "$1" && pwd); A=$(cd "$(dirname "$0")/.." && pwd); ROUNDS=${2:-2}
PY=/usr/bin/python3; TB=$A/../shared/bench/torch_gpt_bench.py
log() { echo "### $*"; }
train() { for d in $B $A; do log "$d"; (cd $d && ./wafer bench train "$@" --json 2>/dev/null | tail -1); done; }
for round in $(seq 1 "$ROUNDS"); do
  log "round $round: 4 layers, d 256, B 8, T 128"
  train --n-layer 4 --n-embd 256 --n-head 4 --vocab-size 50257 --batch-size 8 --seq-len 128
  log torch; $PY $TB --n-layer 4 --n-embd 256 --n-head 4 --vocab 50257 --batch 8 --seq 128 2>&1 | tail -1
  log "round $round: gpt2-124m B4 T64"
  train --preset gpt2-124m --batch-size 4 --seq-len 64
  log torch; $PY $TB --n-layer 12 --n-embd 768 --n-head 12 --batch 4 --seq 64 2>&1 | tail -1
  log "round $round: cerebras-gpt-111m B4 T256"
  train --preset cerebras-gpt-111m --batch-size 4 --seq-len 256
  log torch; $PY $TB --preset 111M --batch 4 --seq 256 --steps 5 2>&1 | tail -1
  log "round $round: generate"
  for d in $B $A; do log "$d"; (cd $d && ./wafer bench generate --runs 2 --dtype fp32,bf16 2>/dev/null | tail -3); done
  log torch-generate; $PY $TB --preset 111M --batch 1 --seq 256 --decode 64 --steps 1 2>&1 | tail -2
done
