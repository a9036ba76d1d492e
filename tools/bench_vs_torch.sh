#!/usr/bin/env bash
# Training steps against PyTorch in the same run (issue 15's table): the three shapes of BENCHMARKS.md in fp32, and
# Cerebras-GPT 111M in bf16 against PyTorch's CPU autocast (../shared/bench/torch_gpt_bench.py --precision bf16),
# alternating Wafer and PyTorch, ROUNDS times. Run on an idle machine: tools/bench_vs_torch.sh [ROUNDS] > results.txt
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
PY=/usr/bin/python3; TB=../shared/bench/torch_gpt_bench.py
log() { echo "### $*"; }
wafer() { ./wafer bench train "$@" --json 2>/dev/null | tail -1; }
for round in $(seq 1 "$ROUNDS"); do
  log "round $round: 4 layers, d 256, B 8, T 128, fp32"
  wafer --n-layer 4 --n-embd 256 --n-head 4 --vocab-size 50257 --batch-size 8 --seq-len 128
  $PY $TB --n-layer 4 --n-embd 256 --n-head 4 --vocab 50257 --batch 8 --seq 128 2>&1 | tail -1
  log "round $round: gpt2-124m B4 T64, fp32"
  wafer --preset gpt2-124m --batch-size 4 --seq-len 64
  $PY $TB --n-layer 12 --n-embd 768 --n-head 12 --batch 4 --seq 64 2>&1 | tail -1
  for p in fp32 bf16; do
    log "round $round: cerebras-gpt-111m B4 T256, $p"
    wafer --preset cerebras-gpt-111m --batch-size 4 --seq-len 256 --precision $p
    $PY $TB --preset 111M --batch 4 --seq 256 --steps 5 --precision $p 2>&1 | tail -1
  done
done
