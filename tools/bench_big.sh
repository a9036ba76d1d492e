#!/usr/bin/env bash
# Cerebras-GPT 6.7B and 13B on this machine, with random weights in their exact shapes (wafer init), bf16 and int8
# (wafer convert --dtype int8): generation, and LoRA fine-tuning steps over the frozen base, each with its peak RSS
# (/usr/bin/time -v), wall time and what Wafer prints (tokens/s, s/step, streaming); then what `wafer plan` predicts.
# Needs about 60 GB of disk under DIR. Run on an idle machine:  tools/bench_big.sh DIR [SIZES] [DTYPES]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: tools/bench_big.sh DIR [SIZES] [DTYPES]}
SIZES=${2:-"6.7b 13b"}
DTYPES=${3:-"bf16 int8"}
mkdir -p "$DIR"
LOG="$DIR/bench_big.log"

# one measured command: its own output, then peak RSS and wall time
run() {
  local what=$1; shift
  echo "=== $what: $*" | tee -a "$LOG"
  /usr/bin/time -v "$@" > "$DIR/out.txt" 2> "$DIR/err.txt" || { cat "$DIR/err.txt"; echo "FAILED: $what" | tee -a "$LOG"; return 0; }
  grep -v '^\s' "$DIR/err.txt" | grep -v 'WARNING: Using incubator' | tail -6 | tee -a "$LOG"
  tail -3 "$DIR/out.txt" | tee -a "$LOG"
  echo "peak RSS $(awk '/Maximum resident/ {printf "%.2f GB", $6/1e6}' "$DIR/err.txt"), wall $(awk -F': ' '/Elapsed/ {print $2}' "$DIR/err.txt")" | tee -a "$LOG"
}

for size in $SIZES; do
  m="$DIR/$size-bf16"
  [ -f "$m/model.safetensors.index.json" ] || run "init $size" ./wafer init --preset "cerebras-gpt-$size" --dtype bf16 --tokenizer data/gpt2-tokenizer --out "$m" --overwrite
  for dt in $DTYPES; do
    src="$DIR/$size-$dt"
    if [ "$dt" = int8 ] && [ ! -f "$src/config.json" ]; then
      run "convert $size int8" ./wafer convert --model "$m" --dtype int8 --out "$src" --overwrite
    fi
    sync; { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null || true # each run starts from the disk, as a user's first run would
    run "generate $size $dt" ./wafer generate --model "$src" --dtype "$dt" --prompt "The history of the jury" --max-tokens 16 --greedy
    ./wafer plan --preset "cerebras-gpt-$size" --generate --dtype "$dt" --batch-size 1 --seq-len 32 --memory-per-machine 24GB | tee -a "$LOG"
    run "lora $size $dt" ./wafer finetune --model "$src" --base-dtype "$dt" --task token-classification \
      --train data/brown/pos-train.conll --method lora --max-train 64 --batch-size 2 --max-length 32 --max-steps 3 \
      --no-progress --out "$DIR/lora-$size-$dt" --overwrite
    grep -o '"step":[0-9]*\|"elapsed_s":[0-9.]*' "$DIR/lora-$size-$dt/metrics.jsonl" | paste -sd' ' | tee -a "$LOG"
    ./wafer plan --preset "cerebras-gpt-$size" --batch-size 2 --seq-len 32 --trainable-fraction 0.001 --dtype "$dt" \
      --memory-per-machine 24GB | tee -a "$LOG"
  done
done
