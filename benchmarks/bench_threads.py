"""Two jobs on one small machine: what thread settings keep them from slowing each other down.

Each scenario starts one or two worker processes at once; every worker times optimizer steps of
the default objective (16 candidates, both option orders) and reports its median step. Measured
in one run, as ratios to one worker alone with torch's default threads:

* alone, default threads (one per core)              - the reference
* two at once, default threads                       - what happens when a user starts a second job
* two at once, ``--threads 1`` each (torch.set_num_threads)
* two at once, default threads, OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep instead of spinning)
* alone, ``--threads 1``                             - the cost of giving up a core
* alone and two at once with OMP_WAIT_POLICY=PASSIVE or ACTIVE set explicitly (culturetune's
  command line sets PASSIVE unless the variable is set already)

    python benchmarks/bench_threads.py [--steps 6]

Run it on a quiet machine: other load changes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def worker(steps: int, threads: int | None) -> None:
    import numpy as np
    import torch

    from culturetune.model.loading import load_model
    from culturetune.reading.survey import Survey

    if threads:
        torch.set_num_threads(threads)
    lm = load_model()
    survey = Survey(lm, orders="both")
    gen = torch.Generator().manual_seed(0)
    soft = lm.embedding_stats[0] + lm.embedding_stats[1] * torch.randn(
        16, 5, lm.hidden_size, generator=gen)
    survey.option_probs(soft)  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        survey.option_probs(soft)
        times.append(time.perf_counter() - t)
    print(json.dumps({"median": float(np.median(times)), "threads": torch.get_num_threads()}),
          flush=True)


def scenario(n: int, steps: int, threads: int | None, env: dict[str, str]) -> list[float]:
    args = [sys.executable, __file__, "--worker", "--steps", str(steps)]
    if threads:
        args += ["--threads", str(threads)]
    procs = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **env}) for _ in range(n)]
    for p in procs:  # every worker has loaded its model before any starts timing
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    out = [json.loads(p.stdout.readline())["median"] for p in procs]
    for p in procs:
        p.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--worker", action="store_true")
    args = ap.parse_args()
    if args.worker:
        worker(args.steps, args.threads)
        return
    print(f"{os.cpu_count()} cores; step = 16 candidates x 48 prompts (both orders), median of "
          f"{args.steps}")
    cases = [
        ("alone, default threads", 1, None, {}),
        ("two at once, default threads", 2, None, {}),
        ("two at once, --threads 1 each", 2, 1, {}),
        ("two at once, OMP_WAIT_POLICY=PASSIVE", 2, None, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("alone, --threads 1", 1, 1, {}),
        ("alone, OMP_WAIT_POLICY=PASSIVE", 1, None, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("alone, OMP_WAIT_POLICY=ACTIVE", 1, None, {"OMP_WAIT_POLICY": "ACTIVE"}),
        ("two at once, OMP_WAIT_POLICY=ACTIVE", 2, None, {"OMP_WAIT_POLICY": "ACTIVE"}),
    ]
    ref = None
    for name, n, threads, env in cases:
        steps = scenario(n, args.steps, threads, env)
        worst = max(steps)
        ref = ref or worst
        print(f"{name:40s} step {' / '.join(f'{s:.2f}' for s in steps):>13s} s   "
              f"{worst / ref:5.1f}x the step alone")


if __name__ == "__main__":
    main()
