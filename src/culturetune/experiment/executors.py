"""How the work runs: in this process (``--executor local``, the default) or on Ray.

What is computed lives elsewhere: one grid cell is
:meth:`culturetune.experiment.cells.CellRunner.run`, one population's losses are
:class:`culturetune.tuning.search.Objective`. This module only decides where they run:

* :class:`LocalExecutor` runs the grid's cells one after another on a loaded model.
* :class:`RayCluster` starts a local Ray instance (no address) or joins a running cluster
  (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) and holds a pool of worker actors, each of which
  loads the model once and then takes one job after another (:class:`WorkerPool`). A worker
  that dies (killed process, lost node) is restarted by Ray (``max_restarts``) and its job is
  submitted again; results come back as values, so only the driver writes files.
* :class:`RayExecutor` runs the grid's unfinished cells on the pool; :class:`RayPopulation`
  splits each optimizer step's candidates into contiguous shares, one per worker, and returns
  the losses in candidate order (``tune(evaluate=...)``).

Ray's settings and checks are in :mod:`culturetune.experiment.raysettings`, the worker actor
and the pool's scheduler (and why it is not Ray's task retries) in
:mod:`culturetune.experiment.workers`. Ray is imported only when a Ray executor is used
(``pip install 'culturetune[ray]'``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturetune.core.errors import CultureTuneError
from culturetune.experiment.raysettings import (
    RaySettings,
    check_reachable,
    errors_to_stderr,
    require_ray,
)
from culturetune.experiment.workers import (
    CRASH_ENV,
    Event,
    Worker,
    WorkerPool,
    first_line,
)

if TYPE_CHECKING:
    from culturetune.experiment.config import ExperimentConfig


Say = Callable[[str], None]


# --------------------------------------------------------------------------- in this process


@dataclass
class GridRun:
    """What running a grid gives :func:`culturetune.experiment.grid.run_experiment`: each cell's
    record in grid order, how many were reused, and the model and machine they were measured on."""

    cells: list[dict[str, Any]]
    reused: int
    model: str
    machine: dict[str, Any]
    runner: Any  # the driver's CellRunner (views, CulturalBench questions and source)


class LocalExecutor:
    """The grid's cells one after another in this process, on a loaded model."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm

    def run_grid(self, config: ExperimentConfig, out: Path, say: Say) -> GridRun:
        from culturetune.experiment.cells import CellRunner, CellSpec, cell_specs
        from culturetune.experiment.config import machine_info

        runner = CellRunner(self.lm, config, out, say)
        specs = cell_specs(config)
        records, reused = [], 0
        for i, spec in enumerate(specs, 1):

            def announce(spec: CellSpec, again: bool, i: int = i) -> None:
                state = "(already done)" if again else "..."
                say(f"cell {i}/{len(specs)}: {spec.label} {state}")

            cell, again = runner.run(spec, announce)
            records.append(cell)
            reused += again
        return GridRun(records, reused, self.lm.name, machine_info(self.lm), runner)


class RayCluster:
    """A Ray connection for one command: ``with RayCluster(settings) as cluster:``. No address
    starts a local instance sized to this machine (its CPUs and GPUs); ``auto`` or an address
    joins a running cluster. On leaving, the pools' actors are killed and the driver
    disconnects (a local instance it started stops); a Ray session the caller had already
    started is left running."""

    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings.validate()
        self.ray: Any = None
        self.owned = False
        self.pools: list[WorkerPool] = []

    def __enter__(self) -> RayCluster:
        ray = self.ray = require_ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if ray.is_initialized():
            return self
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                      logging_level="ERROR")
        if self.settings.address is None:
            # Jobs pass prompts and results only: a small object store is plenty.
            kwargs["object_store_memory"] = 256 * 2**20
        check_reachable(self.settings.address)
        try:
            ray.init(address=self.settings.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = self.settings.address or "a local instance"
            raise CultureTuneError(
                f"cannot reach Ray at {where} ({first_line(exc)}); start a cluster with `ray "
                "start --head` (then --ray-address auto on that machine, or the address it "
                "prints elsewhere), or leave --ray-address out to start one here") from None
        self.owned = True
        errors_to_stderr(ray)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.ray is None:
            return
        actors = [a for pool in self.pools for a in pool.actors]
        try:  # let the workers remove their scratch folders (briefly), then stop them
            refs = [a.close.remote() for a in actors]
            self.ray.wait(refs, num_returns=len(refs), timeout=5.0)
        except Exception:  # noqa: BLE001 - workers that are gone have nothing to remove
            pass
        for actor in actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.pools = []
        if self.owned:
            self.ray.shutdown()
            self.owned = False

    def resources(self) -> tuple[float, float]:
        res = self.ray.cluster_resources()
        return float(res.get("CPU", 0)), float(res.get("GPU", 0))

    def pool(self, jobs: int | None = None) -> WorkerPool:
        """Start the workers: ``--workers``, or as many as the cluster's CPUs (GPUs, with
        ``--gpus-per-worker``) hold, at most ``jobs``."""
        s = self.settings
        cpus, gpus = self.resources()
        per_gpu = s.gpus_per_worker if s.gpus_per_worker is not None else (1.0 if gpus else 0.0)
        fit = int(cpus // s.cpus_per_worker)
        if per_gpu > 0:
            fit = min(fit, int(gpus // per_gpu))
        n = s.workers or max(1, min(fit, jobs or fit))
        if n > fit:
            need = f"{s.cpus_per_worker:g} CPU" + (f" and {per_gpu:g} GPU" if per_gpu else "")
            raise CultureTuneError(
                f"{n} workers of {need} each do not fit the Ray cluster ({cpus:g} CPUs, "
                f"{gpus:g} GPUs): ask for at most {fit} (--workers), or add nodes")
        remote = self.ray.remote(Worker).options(
            num_cpus=s.cpus_per_worker, num_gpus=per_gpu, max_restarts=-1, max_task_retries=0)
        crash = os.environ.get(CRASH_ENV) or None

        def make() -> Any:
            return remote.remote(s.model_args(), s.worker_threads, crash)

        pool = WorkerPool(self.ray, make, [make() for _ in range(n)])
        self.pools.append(pool)
        return pool


# --------------------------------------------------------------------------- grid on Ray


@dataclass
class _ModelInfo:
    """What the driver's CellRunner needs of the workers' model (their name and dtype)."""

    name: str
    dtype: str
    device: str


class RayExecutor:
    """The grid's unfinished cells on a pool of Ray workers, as workers free up. The driver
    checks saved cells, sends each worker job its config, spec and the files it needs (a saved
    cell lacking views, a tuning checkpoint), and writes what comes back: the run folder first,
    then the cell, atomically."""

    def __init__(self, cluster: RayCluster) -> None:
        self.cluster = cluster

    def run_grid(self, config: ExperimentConfig, out: Path, say: Say) -> GridRun:
        from culturetune.core.files import atomic_path, write_json
        from culturetune.experiment.cells import CellRunner, cell_specs, run_path

        specs = cell_specs(config)
        pool = self.cluster.pool(len(specs))
        say(f"starting {len(pool.actors)} Ray workers (each loads the model) ...")
        info = pool.describe()
        first = info[0]
        if config.format == "auto" or config.other_formats is None:
            settled = pool.run("resolve_formats", [(config.to_dict(),)])[0]
            config.format, config.other_formats = settled["format"], settled["other_formats"]
            for line in settled["said"]:
                say(line)
        runner = CellRunner(_ModelInfo(first["name"], first["dtype"], first["device"]), config,
                            out, say)
        records: list[dict[str, Any] | None] = [None] * len(specs)
        todo: list[int] = []
        for i, spec in enumerate(specs):
            saved = runner.saved(spec)
            if saved is not None and not runner.missing_views(saved):
                records[i] = saved
                say(f"cell {i + 1}/{len(specs)}: {spec.label} (already done)")
            else:
                todo.append(i)
        reused = len(specs) - len(todo)
        data = None
        if config.data is not None and config.bench_split is not None:
            source = Path(str(runner.bench.source))
            data = (source.name, source.read_bytes())
        conf = config.to_dict()

        def job(i: int) -> tuple[Any, ...]:
            spec = specs[i]
            files: dict[str, bytes] = {}
            if spec.path(out).exists():
                files[spec.path(out).relative_to(out).as_posix()] = spec.path(out).read_bytes()
            if spec.seed is not None:
                folder = run_path(out, spec.target, spec.method, spec.seed)
                for p in sorted(folder.rglob("*")) if folder.exists() else []:
                    if p.is_file() and not p.name.startswith("."):
                        files[p.relative_to(out).as_posix()] = p.read_bytes()
            return (conf, spec.to_dict(), files, data, runner.bench.source)

        def show(e: Event) -> None:
            i = todo[e.job]
            head = f"cell {i + 1}/{len(specs)}: {specs[i].label}"
            tally = (f"[{reused + e.done} done, {e.running} running, {e.failed} failed, of "
                     f"{len(specs)}]")
            if e.kind == "start":
                say(f"{head} ... (worker {e.worker + 1}) {tally}")
            elif e.kind == "lost":
                say(f"{head}: worker {e.worker + 1} died ({e.error}); redoing the cell {tally}")
            else:
                r = e.result
                for rel, blob in r["files"].items():
                    with atomic_path(out / rel) as tmp:
                        Path(tmp).write_bytes(blob)
                write_json(specs[i].path(out), r["cell"])
                records[i] = r["cell"]
                say(f"{head} done in {r['seconds']:.0f} s {tally}")

        pool.run("run_cell", [job(i) for i in todo], show)
        machine = dict(first["machine"], executor="ray", workers=len(pool.actors),
                       hosts=sorted({w["host"] for w in info}), lost_workers=pool.failed)
        cells = [r for r in records if r is not None]
        return GridRun(cells, reused, first["name"], machine, runner)


# --------------------------------------------------------------------------- tune on Ray


class RayPopulation:
    """``tune(evaluate=...)`` on Ray: each step's candidates in contiguous shares, one per
    worker, each scored with the local objective; losses concatenated in candidate order."""

    def __init__(self, pool: WorkerPool, config: Any) -> None:
        # The settings are read at the first step: the run resolves ``--format auto`` first.
        self.pool, self._config, self.config = pool, config, None

    def __call__(self, prompts: Any) -> Any:
        import numpy as np

        if self.config is None:
            self.config = self._config.to_dict()

        n = int(prompts.shape[0])
        shares = [s for s in np.array_split(np.arange(n), min(n, len(self.pool.actors)))
                  if len(s)]
        jobs = [(self.config, prompts[int(s[0]):int(s[-1]) + 1].float().contiguous())
                for s in shares]
        losses = self.pool.run("score", jobs)
        return np.concatenate([np.asarray(x, dtype=np.float64) for x in losses])
