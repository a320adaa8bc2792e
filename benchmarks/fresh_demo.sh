#!/bin/bash
# `make demo` on a fresh clone of this checkout's HEAD, timed: the demo's install, then the demo
# on an empty model cache (CULTURETUNE_CACHE), then the demo again. Run it alone on the machine:
#   bash benchmarks/fresh_demo.sh      # uses /tmp/fresh and /tmp/fresh-cache, removed first
rm -rf /tmp/fresh /tmp/fresh-cache; git clone -q "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" /tmp/fresh && cd /tmp/fresh || exit 1
export CULTURETUNE_CACHE=/tmp/fresh-cache
s=$(date +%s); make .venv/.installed-demo > install.log 2>&1; echo "install rc=$? $(( $(date +%s) - s )) s"
s=$(date +%s); make demo > demo1.log 2>&1; echo "demo (empty cache) rc=$? $(( $(date +%s) - s )) s"
s=$(date +%s); make demo > demo2.log 2>&1; echo "demo (again) rc=$? $(( $(date +%s) - s )) s"
tail -40 demo1.log
