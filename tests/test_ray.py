"""The grid and tuning populations on Ray (issue 10; :mod:`culturetune.experiment.executors`).

Every command runs in a subprocess with one torch thread per process (the in-process reference
and each Ray worker alike), on a local Ray instance of 2 single-CPU workers. A worker is killed
deterministically through the executors' test hook: ``CULTURETUNE_RAY_CRASH_ONCE`` names a file
that the first worker job to create it answers by ``os._exit`` after computing, before returning,
so its work is lost and must be redone. Ray refusals without a model are at the top; the input
checks that need no Ray (``--workers 0``, a malformed address, the extra missing) are in the
hostile table of ``tests/test_hostile.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from culturetune.experiment.grid import measured as numbers

if TYPE_CHECKING:
    from conftest import Cli

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench_easy_slice.csv"
#: One country x (plain, de) x 1 seed, two optimizer steps of 8 (two cells: one per worker).
GRID = ["--countries", "China", "--methods", "plain,de", "--seeds", "1",
        "--budget", "16", "--data", str(FIXTURE), "--bench-limit", "4"]
RAY = ["--executor", "ray", "--workers", "2", "--cpus-per-worker", "1"]


def culturetune(args: list[str], cwd: Path, crash: Path | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env.pop("CULTURETUNE_RAY_CRASH_ONCE", None)
    if crash is not None:
        env["CULTURETUNE_RAY_CRASH_ONCE"] = str(crash)
    return subprocess.run([sys.executable, "-m", "culturetune.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# --------------------------------------------------------------------------- without a model


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:1"])
def test_an_address_without_a_cluster_is_refused_before_the_model(tmp_path: Path,
                                                                   address: str) -> None:
    proc = culturetune(["tune", "--country", "China", "--workers", "2", "--ray-address",
                        address, "--out", "r"], tmp_path, timeout=120)
    assert f"cannot reach Ray at {address}" in one_error(proc)
    assert "loading" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_ctrl_c_on_the_driver_exits_130_and_stops_ray(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      run_cli: Cli) -> None:
    """Interrupted while the workers start (no model is needed for that here): the hint to run
    again, Ray shut down, no lock file left."""
    import ray

    from culturetune.experiment import executors

    def interrupted(self: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(executors.WorkerPool, "describe", interrupted)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["experiment", *GRID, *RAY, "--out", "exp"])
    assert code == 130, err
    assert "run the same command again" in err
    assert not ray.is_initialized()
    assert not any(p.name.startswith(".culturetune") for p in tmp_path.rglob("*"))


# --------------------------------------------------------------------------- with the model


@pytest.mark.model
def test_grid_on_ray_with_a_killed_worker_equals_local(tmp_path: Path) -> None:
    """The same grid in this process and on 2 Ray workers, one of which is killed after
    finishing its first cell: identical results.json numbers; a rerun skips every cell."""
    (tmp_path / "cfg.json").write_text(json.dumps({"population": 8}))
    base = ["experiment", "--config", "cfg.json", *GRID]  # not --json: progress lines wanted
    local = culturetune([*base, "--threads", "1", "--out", "local"], tmp_path)
    assert local.returncode == 0, local.stderr
    crash = tmp_path / "crash-marker"
    on_ray = culturetune([*base, *RAY, "--out", "ray"], tmp_path, crash=crash)
    assert on_ray.returncode == 0, on_ray.stderr
    assert crash.exists(), "no worker was killed"
    assert "died" in on_ray.stderr and "redoing the cell" in on_ray.stderr
    assert "[2 done, 0 running, 1 failed, of 2]" in on_ray.stderr
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("local", "ray"))
    assert numbers(a) == numbers(b)
    assert b["machine"]["executor"] == "ray" and b["machine"]["lost_workers"] == 1
    for rel in ("runs/CHI/de-seed0/adapter_model.safetensors", "runs/CHI/de-seed0/run.json",
                "cells/CHI/de-seed0.json", "report.md"):
        assert (tmp_path / "ray" / rel).exists(), rel
    again = culturetune([*base, *RAY, "--out", "ray"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(already done)") == 2
    assert numbers(json.loads((tmp_path / "ray" / "results.json").read_text())) == numbers(a)


@pytest.mark.model
def test_tune_on_two_workers_equals_one(tmp_path: Path) -> None:
    """Same seed, same prompt: ``--workers 2`` (one worker killed mid-run) and ``--workers 1``,
    in float32 (bf16 scores depend on the batch split; docs/ray.md)."""
    from safetensors.torch import load_file

    base = ["tune", "--country", "China", "--optimizer", "pso", "--budget", "16", "--population",
            "8", "--seed", "0",
            "--dtype", "float32", "--format", "number", "--train-instrument", "none",
            "--json"]
    one = culturetune([*base, "--threads", "1", "--out", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    crash = tmp_path / "crash-marker"
    two = culturetune([*base, "--workers", "2", "--out", "two"], tmp_path, crash=crash)
    assert two.returncode == 0, two.stderr
    assert crash.exists(), "no worker was killed"
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert [h["best_loss"] for h in a["history"]] == [h["best_loss"] for h in b["history"]]
    assert {**a["final"], "prompt": None} == {**b["final"], "prompt": None}  # but the name

    def prompt(name: str) -> Any:
        return load_file(str(tmp_path / name / "adapter_model.safetensors"))["prompt_embeddings"]

    assert prompt("one").equal(prompt("two"))
