#!/usr/bin/env bash
# The default `culturetune tune` (every default, seed 0) for the four countries of the reference
# study on the bundled default model, each with its validity check (held-out wording, each order
# alone, what the model says, option mass) and the model check.
#   bash docs/results/answers/defaults.sh [culturetune [COUNTRY ...]]   # resumable
# Then: python docs/results/answers/summarize.py docs/results/answers/default
set -euo pipefail
ct=${1:-.venv/bin/culturetune}
out=docs/results/answers/default
mkdir -p "$out"
countries=("${@:2}")
[ ${#countries[@]} -gt 0 ] || countries=("Saudi Arabia" USA China India)
for country in "${countries[@]}"; do
  dir="$out/$(echo "$country" | tr 'A-Z ' 'a-z-')"
  if [ -f "$dir/culturetune.json" ]; then echo "== $dir (done)"; continue; fi
  echo "== $dir"
  if [ -f "$dir/run.json" ]; then
    "$ct" tune --resume "$dir" --json > /dev/null
  else
    "$ct" tune --country "$country" --out "$dir" --json > /dev/null
  fi
  rm -f "$dir/checkpoint.safetensors"
done
