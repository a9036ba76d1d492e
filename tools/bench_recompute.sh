#!/usr/bin/env bash
# Activation recomputation (--recompute), memory and time: Cerebras-GPT 111M pretraining steps (bench train, B 4 x T 256)
# and LoRA steps on a random Cerebras-GPT 1.3B (wafer init, B 1 x T 2048 causal LM), each with and without --recompute,
# peak RSS from /usr/bin/time -v at a bounded heap (ParallelGC grows an unbounded heap with the garbage rate, so the
# default -Xmx16g measures the collector, not the activations); then what `wafer plan` predicts. Run on an idle machine:
#   tools/bench_recompute.sh DIR
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: tools/bench_recompute.sh DIR}
mkdir -p "$DIR"
rss() { awk '/Maximum resident/ {printf "%.2f GB", $6/1e6}' "$1"; }
for r in "" --recompute; do
  echo "=== 111M bench train ${r:-(no recompute)}, -Xmx3g"
  WAFER_JAVA_OPTS=-Xmx3g /usr/bin/time -v ./wafer bench train --preset cerebras-gpt-111m --batch-size 4 --seq-len 256 --steps 5 $r \
    2> "$DIR/time.txt" | tail -2
  grep -q 'OutOfMemoryError' "$DIR/time.txt" && echo "out of memory at -Xmx3g"
  echo "peak RSS $(rss "$DIR/time.txt")"
  ./wafer plan --preset cerebras-gpt-111m --batch-size 4 --seq-len 256 $r 2>/dev/null | grep -E 'activations|  total' | head -2
done
m="$DIR/1.3b-fp32"
[ -f "$m/config.json" ] || ./wafer init --preset cerebras-gpt-1.3b --dtype fp32 --tokenizer data/gpt2-tokenizer --out "$m" --overwrite
python3 - "$DIR/chat.jsonl" <<'EOF'
import json, sys
# four long instruction examples from the bundled Brown text, so that each fills the 2048-token context
words = open("data/brown/train.txt").read().split()
with open(sys.argv[1], "w") as f:
    for i in range(4):
        f.write(json.dumps({"prompt": " ".join(words[i * 3000:i * 3000 + 200]), "response": " ".join(words[i * 3000 + 200:i * 3000 + 1700])}) + "\n")
EOF
for r in "" --recompute; do
  echo "=== 1.3B LoRA, B 1 x T 2048 ${r:-(no recompute)}, -Xmx8g"
  WAFER_JAVA_OPTS=-Xmx8g /usr/bin/time -v ./wafer finetune --model "$m" --task causal-lm --train "$DIR/chat.jsonl" --method lora \
    --batch-size 1 --max-length 2048 --max-steps 2 --no-progress --overwrite --out "$DIR/lora-1.3b" $r 2> "$DIR/time.txt" | tail -1
  grep -E 'steps in|OutOfMemory' "$DIR/time.txt" | tail -1
  grep -o '"step":[0-9]*\|"elapsed_s":[0-9.]*' "$DIR/lora-1.3b/metrics.jsonl" | paste -sd' '
  echo "peak RSS $(rss "$DIR/time.txt")"
  ./wafer plan --preset cerebras-gpt-1.3b --batch-size 1 --seq-len 2048 --trainable-fraction 0.001 $r 2>/dev/null | grep -E 'activations|  total' | head -2
done
