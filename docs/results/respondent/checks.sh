#!/usr/bin/env bash
# The respondent's checks beside the plain bundled model's: the model check on the VSM 2013,
# a few chat replies (does it still write English?) and CulturalBench-Easy (letter scoring, the
# four countries of the reference study, from the local copy of the hub's file).
#   bash docs/results/respondent/checks.sh [DATA.csv]
set -euo pipefail
ct=${CULTURETUNE:-.venv/bin/culturetune}
data=${1:-../shared/data/culturalbench/CulturalBench-Easy.csv}
out=docs/results/respondent
for model in respondent plain; do
  flag=()
  [ "$model" = respondent ] && flag=(--model respondent)
  "$ct" check-model "${flag[@]}" --json > "$out/check-$model.json"
  "$ct" bench "${flag[@]}" --data "$data" --country "Saudi Arabia" --country USA \
    --country China --country India --json > "$out/bench-$model.json"
  : > "$out/chat-$model.txt"
  for message in "What is the capital of France?" \
                 "Give me three tips for a good night's sleep." \
                 "Write two sentences about autumn."; do
    printf '> %s\n' "$message" >> "$out/chat-$model.txt"
    "$ct" chat "${flag[@]}" --max-new-tokens 60 "$message" >> "$out/chat-$model.txt"
    printf '\n' >> "$out/chat-$model.txt"
  done
done
