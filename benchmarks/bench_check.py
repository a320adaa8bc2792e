"""How long the model check takes (``culturetune check-model``, measured, not read from the cache).

    python benchmarks/bench_check.py [--model M]

Target on the 2-core CPU: the bundled default model checked in under 60 s (three surveys of 24
items in two orders, plus the greedy replies of the plain model for the first-token check).
"""

from __future__ import annotations

import argparse
import time

from culturetune.model.loading import load_model
from culturetune.reading.check import run_check


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    began = time.perf_counter()
    lm = load_model(args.model)
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    check = run_check(lm)
    seconds = time.perf_counter() - began
    print(f"model {lm.name} on {lm.device}, {lm.dtype}: loaded in {loaded:.1f} s")
    print(f"check-model: {check.verdict} in {seconds:.1f} s   target < 60 s: "
          f"{'ok' if seconds < 60 else 'MISSED'}")
    print(f"with the model load: {loaded + seconds:.1f} s")


if __name__ == "__main__":
    main()
