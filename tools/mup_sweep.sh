#!/usr/bin/env bash
# µP learning-rate transfer on the bundled Brown sample: widths 64 and 256, five learning rates, with and without
# --mup (base width 64, the proxy's), the same data, seed, schedule and held-out batches for every run. Writes
# OUT/results.tsv (param, width, lr, final train loss, held-out loss) and OUT/mup_sweep.png, and prints the best
# learning rate of each row. Runs that finished are kept, so a rerun continues where it stopped; two instances
# (PARAMS=sp and PARAMS=mup) can share OUT, and the one that ends last tabulates every run.
#   tools/mup_sweep.sh [OUT]            (STEPS, BATCH, SEQ, LRS, WIDTHS, PARAMS override the defaults below)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/mup-sweep}
STEPS=${STEPS:-150} BATCH=${BATCH:-4} SEQ=${SEQ:-64}
LRS=${LRS:-"1e-3 3e-3 1e-2 3e-2 1e-1"} WIDTHS=${WIDTHS:-"64 256"} PARAMS=${PARAMS:-"sp mup"}
mkdir -p "$OUT"
[ -f "$OUT/shards/val_000000.bin" ] || ./wafer prepare --tokenizer data/gpt2-tokenizer \
    --input data/brown/train.txt data/brown/val.txt --val-fraction 0.1 --out "$OUT/shards"
for width in $WIDTHS; do
  for param in $PARAMS; do
    for lr in $LRS; do
      run="$OUT/$param-w$width-lr$lr"
      mup=(); [ "$param" = mup ] && mup=(--mup --mup-base-width 64)
      if ! grep -q eval_loss "$run/metrics.jsonl" 2>/dev/null || [ ! -f "$run/config.json" ]; then
        rm -rf "$run"
        echo "== $param width $width lr $lr"
        ./wafer pretrain --preset mini --n-layer 2 --n-embd "$width" --n-head 4 "${mup[@]}" \
            --data "$OUT/shards" --eval-data "$OUT/shards" --steps "$STEPS" --batch-size "$BATCH" --seq-len "$SEQ" \
            --lr "$lr" --schedule cosine --warmup-steps 10 --eval-every "$STEPS" --eval-batches 8 --seed 1337 \
            --no-progress --out "$run" 2>&1 | grep -E 'held-out|error' || true
      fi
    done
  done
done
# the table of every finished run
printf 'param\twidth\tlr\ttrain_loss\teval_loss\n' > "$OUT/results.tsv"
for width in $WIDTHS; do for param in sp mup; do for lr in $LRS; do
  [ -f "$OUT/$param-w$width-lr$lr/config.json" ] || continue
  python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r["loss"] for r in rows if "loss" in r][-1]
ev = [r["eval_loss"] for r in rows if "eval_loss" in r][-1]
print("\t".join(sys.argv[2:5] + [f"{train:.4f}", f"{ev:.4f}"]))' "$OUT/$param-w$width-lr$lr/metrics.jsonl" "$param" "$width" "$lr" >> "$OUT/results.tsv"
done; done; done
column -t "$OUT/results.tsv"
# the best learning rate of each (param, width), by held-out loss
awk -F'\t' 'NR > 1 && (!(($1" "$2) in best) || $5 < best[$1" "$2]) { best[$1" "$2] = $5; lr[$1" "$2] = $3 }
    END { for (k in best) print "best " k ": lr " lr[k] " (held-out loss " best[k] ")" }' "$OUT/results.tsv" | sort
java --class-path "wafer-cli/target/classes:wafer-cli/target/lib/*" tools/MupSweepPlot.java "$OUT/results.tsv" "$OUT/mup_sweep.png"
