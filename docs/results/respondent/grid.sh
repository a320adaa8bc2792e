#!/usr/bin/env bash
# The positive control: the default `culturetune tune` (every default) on the respondent (the
# bundled model with the bundled respondent LoRA, which answers by content) and on the plain
# bundled model, for the four countries of the reference study and seeds 0 1 2. Each run keeps
# its validity check (held-out wording, each order alone, what the model says, option mass) and
# its model check. Resumable: finished runs are kept, an interrupted one is resumed.
#   bash docs/results/respondent/grid.sh [MODEL [SEED ...]]   # MODEL: respondent | plain | all
# COUNTRIES="China;India" runs a subset (two halves can run side by side, each pinned to one core:
# taskset -c 0 env CULTURETUNE_THREADS=1 COUNTRIES=... bash ...; the losses do not depend on it).
# Then: python docs/results/answers/summarize.py docs/results/respondent/respondent
set -euo pipefail
ct=${CULTURETUNE:-.venv/bin/culturetune}
models=("${1:-respondent}")
[ "${1:-}" = all ] && models=(respondent plain)
seeds=("${@:2}")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for model in "${models[@]}"; do
  flag=()
  [ "$model" = respondent ] && flag=(--model respondent)
  for seed in "${seeds[@]}"; do
    IFS=';' read -r -a countries <<< "${COUNTRIES:-Saudi Arabia;USA;China;India}"
    for country in "${countries[@]}"; do
      dir="docs/results/respondent/$model/$(echo "$country" | tr 'A-Z ' 'a-z-')-s$seed"
      if [ -f "$dir/culturetune.json" ]; then echo "== $dir (done)"; continue; fi
      echo "== $dir"
      if [ -f "$dir/run.json" ]; then
        "$ct" tune --resume "$dir" --json > /dev/null
      else
        "$ct" tune "${flag[@]}" --country "$country" --seed "$seed" --out "$dir" --json > /dev/null
      fi
      rm -f "$dir/checkpoint.safetensors"
    done
  done
done
