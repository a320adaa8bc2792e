#!/usr/bin/env bash
# Objectives side by side at equal budget (640 evaluations, PSO, seed 0) for China and the
# U.S.A. on the bundled default model; each run is checked on a held-out wording (paraphrase2,
# never tuned on), each option order alone, what the model says, and the option mass.
#   bash docs/results/answers/objectives.sh [culturetune [COUNTRY:VARIANT ...]]
# (~50 min on 2 cores for all 14 runs; resumable; runs already done are skipped)
# Then: python docs/results/answers/summarize.py docs/results/answers/runs
set -euo pipefail
ct=${1:-.venv/bin/culturetune}
out=docs/results/answers/runs
mkdir -p "$out"
# Every setting of the objective is given, so that the runs do not depend on the defaults.
one="--train-instrument none" two="--train-instrument paraphrase"
declare -A variants=(
  [pooled]="--objective pooled $one --min-mass 0 --missing renormalise --reading expected"
  [mean]="--objective mean $one --min-mass 0 --missing renormalise --reading expected"
  [worst]="--objective worst $one --min-mass 0 --missing renormalise --reading expected"
  [neutral]="--objective pooled $one --min-mass 0 --missing neutral --reading expected"
  [worst2]="--objective worst $two --min-mass 0 --missing renormalise --reading expected"
  [worst2-floor]="--objective worst $two --min-mass 0.5 --missing renormalise --reading expected"
  [worst2-floor-said]="--objective worst $two --min-mass 0.5 --missing renormalise --reading said"
)
runs=("${@:2}")
if [ ${#runs[@]} -eq 0 ]; then
  for country in China USA; do
    for name in pooled mean worst neutral worst2 worst2-floor worst2-floor-said; do
      runs+=("$country:$name")
    done
  done
fi
for run in "${runs[@]}"; do
    country=${run%%:*} name=${run#*:}
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
