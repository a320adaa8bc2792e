"""The same small experiment grid in this process and on Ray, measured in one run.

    python benchmarks/bench_ray.py [--countries China,U.S.A.] [--methods plain,pso]
        [--seeds 1] [--budget 64] [--population 16] [--bench-limit 8] [--data FILE]
        [--workers 2] [--local-threads N] [--model M]

Prints the wall time of each (the in-process run includes its model load; the Ray run starting
the local instance and every worker's model load), their ratio, the time until the first cell
starts on Ray, and the per-cell overhead: how much longer the driver waits for a cell than the
worker spends measuring it (sending the job and the files, returning the record), averaged over
cells. Also checks that both runs give the same numbers. Target on a 2-core CPU: 2 single-threaded
Ray workers within 1.3x of the in-process wall time (the in-process run uses every core).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any


def differences(a: Any, b: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Where two results differ: (path, in process, on Ray) for every differing leaf."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [(where.lstrip("."), a, b)]


def summarize(diffs: list[tuple[str, Any, Any]], local_threads: int) -> list[str]:
    """A few lines on how far two results are apart: the largest loss and accuracy gaps."""
    gap = {"loss": 0.0, "accuracy": 0.0}
    for path, a, b in diffs:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            for kind in gap:
                if path.endswith(kind):
                    gap[kind] = max(gap[kind], abs(a - b))
    cells = sorted({p.split("]")[0] + "]" for p, _, _ in diffs if p.startswith("cells[")})
    lines = [f"{len(diffs)} numbers differ, in {len(cells)} cell(s); largest gap: loss "
             f"{gap['loss']:.3g}, CulturalBench accuracy {gap['accuracy']:.3g}"]
    lines += [f"  {p}: {a!r} vs {b!r}" for p, a, b in diffs[:5]]
    if local_threads != 1:
        lines.append(f"  (expected: the in-process run used {local_threads} torch threads and "
                     "each worker 1; bf16 sums depend on the thread count, so a tuned prompt "
                     "can take another path. --local-threads 1 compares like with like.)")
    return lines


class Clock:
    """Progress lines with their times: when each cell was sent and when it came back."""

    def __init__(self, quiet: bool) -> None:
        self.began = time.perf_counter()
        self.sent: dict[str, float] = {}
        self.waits: list[float] = []
        self.first: float | None = None
        self.quiet = quiet

    def __call__(self, line: str) -> None:
        now = time.perf_counter() - self.began
        if not self.quiet:
            print(f"  [{now:6.1f} s] {line}", flush=True)
        m = re.match(r"cell (\d+)/\d+: .*? \.\.\. \(worker", line)
        if m:
            self.sent[m.group(1)] = now
            self.first = self.first if self.first is not None else now
        m = re.match(r"cell (\d+)/\d+: .* done in ([\d.]+) s", line)
        if m and m.group(1) in self.sent:
            self.waits.append(now - self.sent[m.group(1)] - float(m.group(2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--countries", default="China,U.S.A.")
    ap.add_argument("--methods", default="plain,pso")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--budget", type=int, default=64)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--bench-limit", type=int, default=8)
    ap.add_argument("--data", default=str(Path(__file__).parents[1] / "tests" / "fixtures"
                                          / "culturalbench_easy_slice.csv"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--local-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", default=None)
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args()

    import torch

    from culturetune.experiment.config import ExperimentConfig
    from culturetune.experiment.executors import RayCluster, RayExecutor, RaySettings
    from culturetune.experiment.grid import measured, run_experiment
    from culturetune.model.loading import load_model

    cfg = ExperimentConfig(countries=args.countries, methods=args.methods, seeds=args.seeds,
                           budget=args.budget, population=args.population, data=args.data,
                           bench_limit=args.bench_limit, model=args.model).validate()
    cells = len(cfg.cells())
    print(f"grid: {len(cfg.countries)} countries x {cfg.methods} x {cfg.seeds} seed(s) = {cells} "
          f"cells, budget {cfg.budget}, population {cfg.population}; {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        torch.set_num_threads(args.local_threads)
        print(f"in process ({args.local_threads} torch threads) ...", flush=True)
        t = time.perf_counter()
        lm = load_model(args.model)
        local = run_experiment(lm, cfg, Path(tmp) / "local", progress=Clock(args.quiet))
        t_local = time.perf_counter() - t
        del lm

        print(f"on Ray ({args.workers} workers, 1 CPU and 1 thread each) ...", flush=True)
        clock = Clock(args.quiet)
        t = time.perf_counter()
        settings = RaySettings(workers=args.workers, cpus_per_worker=1, threads=1,
                               model=args.model)
        with RayCluster(settings) as cluster:
            on_ray = run_experiment(None, cfg, Path(tmp) / "ray", progress=clock,
                                    executor=RayExecutor(cluster))
        t_ray = time.perf_counter() - t

    overhead = sum(clock.waits) / len(clock.waits) if clock.waits else float("nan")
    print()
    print(f"in process          {t_local:8.1f} s  (model load included)")
    print(f"on Ray              {t_ray:8.1f} s  (Ray start and worker model loads included)")
    print(f"ratio Ray / local   {t_ray / t_local:8.2f}x  (target <= 1.3x on 2 cores)")
    if clock.first is not None:
        print(f"until the first cell starts on Ray {clock.first:6.1f} s")
    print(f"per-cell overhead   {overhead:8.2f} s  (driver wait minus worker time, mean of "
          f"{len(clock.waits)} cells)")
    diffs = differences(measured(local), measured(on_ray))
    print(f"same numbers        {'yes' if not diffs else 'NO'}")
    for line in summarize(diffs, args.local_threads) if diffs else []:
        print(line)


if __name__ == "__main__":
    main()
