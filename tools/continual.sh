#!/usr/bin/env bash
# Continual learning on Brown part-of-speech tagging (BENCHMARKS.md, "Continual learning"): task A is the informative
# prose genres (news ... learned), task B the imaginative ones (fiction ... humor), split by tools/brown_pos_genres.py
# from ../shared/data. Fine-tunes the demo's pretrained model on A, then on B from A's model four ways (plain,
# --replay of A's data, --ewc with A's Fisher information) and, as the zero-forgetting baseline, one LoRA adapter per
# task on the pretrained model; prints token accuracy on A's and B's test sentences.
#
# usage: tools/continual.sh [OUT]    (default runs/continual; needs runs/demo/pretrain: ./wafer demo writes it)
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-runs/continual}
BASE=runs/demo/pretrain
[ -f "$BASE/model.safetensors" ] || { echo "tools/continual.sh: no $BASE; run ./wafer demo first" >&2; exit 2; }
python3 tools/brown_pos_genres.py ../shared/data "$D/data"
A=$D/data/informative; B=$D/data/imaginative
run() { echo "+ ./wafer $*" >&2; ./wafer "$@" 2>&1 | grep -v '^WARNING' >&2; }
ft() { run finetune --task token-classification --batch-size 32 --max-length 128 --seed 1 --no-progress --overwrite "$@"; }
ON_A=(--train $A-train.conll --max-train 6000 --epochs 3)   # A to near its best, so that B has something to undo
ON_B=(--train $B-train.conll --max-train 2000 --epochs 4)
FULL=(--method full --lr 2e-3)
LORA=(--method lora --lora-r 16 --lora-targets c_attn,attn.c_proj,c_fc,mlp.c_proj --lr 3e-3)
EWC=${EWC:-100 1000 10000}

ft --model $BASE "${ON_A[@]}" "${FULL[@]}" --fisher-examples 500 --out $D/a
ft --model $D/a "${ON_B[@]}" "${FULL[@]}" --out $D/sequential
ft --model $D/a "${ON_B[@]}" "${FULL[@]}" --replay $A-train.conll --replay-ratio 0.25 --out $D/replay
# the same, stopped at sequential's 252 steps (an epoch of replay is a pass over B at 24 a batch: 84 steps, not 63)
ft --model $D/a "${ON_B[@]}" "${FULL[@]}" --replay $A-train.conll --replay-ratio 0.25 --max-steps 252 --out $D/replay-252
for l in $EWC; do ft --model $D/a "${ON_B[@]}" "${FULL[@]}" --ewc $l --out $D/ewc-$l; done
ft --model $BASE "${ON_A[@]}" "${LORA[@]}" --out $D/lora-a
ft --model $BASE "${ON_B[@]}" "${LORA[@]}" --out $D/lora-b

# token accuracy of a model (or base + adapter) on a test file
acc() {
  echo "+ ./wafer evaluate $* --format json" >&2
  ./wafer evaluate --task token-classification "$@" --format json 2>/dev/null | python3 -c 'import json, sys; print("%.4f" % json.load(sys.stdin)["report"]["accuracy"])'
}
before=$(acc --model $D/a --data $A-test.conll)
echo "A's model on B's test sentences: $(acc --model $D/a --data $B-test.conll)"
lora_a=$(acc --model $BASE --adapter $D/lora-a --data $A-test.conll)
echo
echo "| method | A before B | A after B | B |"
echo "| --- | --- | --- | --- |"
for m in sequential replay replay-252 $(for l in $EWC; do echo ewc-$l; done); do
  echo "| $m | $before | $(acc --model $D/$m --data $A-test.conll) | $(acc --model $D/$m --data $B-test.conll) |"
done
# separate adapters: A's adapter is untouched by B's training, so its score after B is measured on the same files
echo "| separate LoRA adapters | $lora_a | $(acc --model $BASE --adapter $D/lora-a --data $A-test.conll) | $(acc --model $BASE --adapter $D/lora-b --data $B-test.conll) |"
