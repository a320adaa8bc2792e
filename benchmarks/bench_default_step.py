"""The default ``tune`` on the bundled model, against the code of an earlier commit, in one run.

    python benchmarks/bench_default_step.py [--against e8ef112] [--budget 64]

Runs ``culturetune tune --country China`` three times, one after the other, each in its own
process (the model cache shared):
- the earlier commit's default (a ``git worktree`` of ``--against``, put first on
  ``PYTHONPATH``: PSO, population 16), ``--budget`` evaluations;
- this checkout with ``--optimizer pso`` and the same budget (the same search, today's engine);
- this checkout's default (Adam, its own default budget of 60 forward-equivalents).
Each tuning time is read from the run's ``history.csv`` (the search alone: not the load, the
model check or the closing checks), and printed per forward-equivalent, with the ratios. It
also prints each whole command's wall time. Run it alone on the machine.

Target (issue "A newcomer's first ten minutes"): ``make demo`` within five minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit],
                   check=True, capture_output=True)
    return where


def tune(src: Path, args: list[str], out: Path) -> tuple[float, float, float]:
    """(tuning seconds, forward-equivalents, wall seconds) of one ``tune`` in its own process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "culturetune.cli", "tune", "--country", "China",
                           *args, "--out", str(out)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"tune failed ({src}):\n{proc.stderr[-2000:]}")
    rows = list(csv.DictReader((out / "history.csv").open()))
    return float(rows[-1]["seconds"]), float(rows[-1]["evaluations"]), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default="e8ef112")
    ap.add_argument("--budget", type=int, default=64, help="PSO evaluations (steps of 16)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = worktree(args.against, tmp / "old")
        try:
            runs = {
                f"{args.against} default (pso)": tune(old / "src", ["--budget", str(args.budget)],
                                                      tmp / "a"),
                "now, pso": tune(ROOT / "src", ["--optimizer", "pso", "--budget",
                                                str(args.budget)], tmp / "b"),
                "now, default (adam)": tune(ROOT / "src", [], tmp / "c"),
            }
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)
    base = None
    print(f"culturetune tune --country China on the bundled model, {os.cpu_count()} cores")
    for name, (seconds, fe, wall) in runs.items():
        per = seconds / fe
        base = base or per
        print(f"{name:28s} tuning {seconds:6.1f} s for {fe:6.1f} fe = {per:.3f} s/fe "
              f"(x{per / base:.2f} of {args.against}); whole command {wall:.0f} s")
    (old_s, old_fe, old_wall), (_, _, _), (adam_s, _, adam_wall) = runs.values()
    print(f"default tune's search: {args.against} 640 evaluations would take "
          f"{640 * old_s / old_fe:.0f} s; now (Adam, 60 fe) {adam_s:.0f} s "
          f"(x{adam_s / (640 * old_s / old_fe):.2f})")


if __name__ == "__main__":
    main()
