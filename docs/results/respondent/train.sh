#!/usr/bin/env bash
# How the respondent was trained (CPU, 2 cores): three stages, each continuing the last.
#   stage 1: data version 1, the schedule of 1200 steps, stopped after 600 (the instruction
#            probe still failed: stances about the scale were 12 % of the data);
#   stage 2: data version 2 (30 % stances about the scale, six wordings each way), the schedule
#            of 600 steps, stopped after 300 (the probe still failed);
#   stage 3: data version 3 (40 %, lead-ins before half the questions, no stance on another
#            topic), the schedule of 450 steps, stopped after 300 (the probe still failed, and
#            held-out accuracy had stopped rising: 0.597, 0.590, 0.600). None answers by content.
#   bash docs/results/respondent/train.sh [OUT]
set -euo pipefail
ct=${CULTURETUNE:-.venv/bin/culturetune}
out=${1:-runs/respondent}
"$ct" respondent train --out "$out-stage1" --data-version 1 --steps 1200 --stop-after 600
"$ct" respondent train --out "$out-stage2" --init "$out-stage1" --data-version 2 --steps 600 \
  --stop-after 300
"$ct" respondent train --out "$out-stage3" --init "$out-stage2" --data-version 3 --steps 450 \
  --check-every 150 --stop-after 300
# stage 4: data version 4 (version 3's items in pairs that differ only in the stance's direction),
#          250 steps: the probe moves in the asked direction for the first time (+0.50 / +0.17).
"$ct" respondent train --out "$out-stage4" --init "$out-stage3" --data-version 4 --steps 250 \
  --eval-every 50 --check-every 250
