#!/usr/bin/env bash
# Objectives side by side at equal budget (640 evaluations, PSO, seed 0) for China and the
# U.S.A. on the bundled default model; each run is checked on a held-out wording (paraphrase2,
# never tuned on), each option order alone, what the model says, and the option mass.
#   bash docs/results/answers/objectives.sh [culturetune]   # ~50 min on 2 cores; resumable
# Then: python docs/results/answers/summarize.py docs/results/answers/runs
set -euo pipefail
ct=${1:-.venv/bin/culturetune}
out=docs/results/answers/runs
mkdir -p "$out"
declare -A variants=(
  [pooled]="--objective pooled"
  [mean]="--objective mean"
  [worst]="--objective worst"
  [neutral]="--objective pooled --missing neutral"
  [worst2]="--objective worst --train-instrument paraphrase"
  [worst2-floor]="--objective worst --train-instrument paraphrase --min-mass 0.5"
  [worst2-floor-said]="--objective worst --train-instrument paraphrase --min-mass 0.5 --reading said"
)
for country in China USA; do
  for name in pooled mean worst neutral worst2 worst2-floor worst2-floor-said; do
    dir="$out/$(echo "$country" | tr 'A-Z' 'a-z')-$name"
    if [ -f "$dir/culturetune.json" ]; then echo "== $dir (done)"; continue; fi
    echo "== $dir"
    if [ -f "$dir/run.json" ]; then
      "$ct" tune --resume "$dir" --json > /dev/null
    else
      # shellcheck disable=SC2086
      "$ct" tune --country "$country" --budget 640 --seed 0 ${variants[$name]} --out "$dir" \
        --json > /dev/null
    fi
    rm -f "$dir/checkpoint.safetensors"
  done
done
