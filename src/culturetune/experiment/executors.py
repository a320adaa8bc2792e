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

Ray is imported here only, and only when a Ray executor is used (``pip install
'culturetune[ray]'``). Test hook: where the environment variable ``CULTURETUNE_RAY_CRASH_ONCE``
names a file that does not exist, the first worker job to create it kills its own process
(``os._exit``) after computing and before returning, so tests can check that lost work is redone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturetune.core.errors import CultureTuneError
from culturetune.core.inputs import check_count

if TYPE_CHECKING:
    from culturetune.experiment.config import ExperimentConfig

RAY_EXTRA = "pip install 'culturetune[ray]'"
CRASH_ENV = "CULTURETUNE_RAY_CRASH_ONCE"
#: Times one job may lose its worker before the run gives up (a job that kills every worker).
MAX_TRIES = 3
_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$")

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


# --------------------------------------------------------------------------- settings


@dataclass
class RaySettings:
    """Where and how the Ray workers run, and the model each one loads (as ``load_model``)."""

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    threads: int | None = None
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False

    def validate(self) -> RaySettings:
        """Check every setting without Ray (errors name the command-line option)."""
        self.address = check_address(self.address)
        if self.workers is not None:
            self.workers = check_count(self.workers, "--workers", 1, 10_000)
        self.cpus_per_worker = _amount(self.cpus_per_worker, "--cpus-per-worker", 1024,
                                       positive=True)
        if self.gpus_per_worker is not None:
            self.gpus_per_worker = _amount(self.gpus_per_worker, "--gpus-per-worker", 64)
        if self.threads is not None:
            self.threads = check_count(self.threads, "--threads", 1, 4096)
        return self

    @property
    def worker_threads(self) -> int:
        """torch threads of each worker: ``--threads``, else its CPUs (at least 1)."""
        return self.threads or max(1, int(self.cpus_per_worker))

    def model_args(self) -> dict[str, Any]:
        return {"name": self.model, "device": self.device, "dtype": self.dtype,
                "trust_remote_code": self.trust_remote_code}


def _amount(value: Any, option: str, high: float, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CultureTuneError(f"{option} must be a number, got {value!r}") from None
    if not (x > 0 if positive else x >= 0) or x > high:
        low = "more than 0" if positive else "at least 0"
        raise CultureTuneError(f"{option} must be {low} and at most {high:g}, got {value!r}")
    return x


def check_address(address: str | None) -> str | None:
    """``--ray-address``: unset (start a local instance), ``auto`` (the running cluster on this
    machine), ``HOST:PORT`` or ``ray://HOST:PORT``."""
    if address is None:
        return None
    text = address.strip()
    if text.lower() == "auto":
        return "auto"
    m = _ADDRESS.match(text)
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise CultureTuneError(
            f"--ray-address takes auto, HOST:PORT or ray://HOST:PORT (the address `ray start "
            f"--head` prints), got {address[:80]!r}")
    return text


def _check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """Refuse a ``HOST:PORT`` nothing answers on (``ray.init`` would wait for it forever)."""
    import socket

    m = _ADDRESS.match(address or "")
    if m is None:
        return
    host = m.group(2).strip("[]")
    try:
        socket.create_connection((host, int(m.group(3))), timeout=timeout).close()
    except OSError as exc:
        raise CultureTuneError(
            f"cannot reach Ray at {address} ({exc.strerror or type(exc).__name__}); is the "
            "cluster running (`ray start --head` prints its address)?") from None


def _errors_to_stderr(ray: Any) -> None:
    """Ray prints its cluster's error messages ("A worker died ...") on the driver's stdout,
    which ``--json`` keeps for the result: send them to stderr (a private hook of Ray's;
    left alone where it is not there)."""
    mod = getattr(getattr(ray, "_private", None), "worker", None)
    show = getattr(mod, "print_to_stdstream", None)
    if show is None or getattr(show, "culturetune", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        show({**data, "is_err": True}, ignore_prefix)

    to_stderr.culturetune = True  # type: ignore[attr-defined]
    mod.print_to_stdstream = to_stderr


def require_ray() -> Any:
    """The ``ray`` module, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise CultureTuneError(
            f"Ray is not installed: running on Ray needs the ray extra ({RAY_EXTRA})") from None
    return ray


# --------------------------------------------------------------------------- the worker


class _Worker:
    """A Ray actor: loads the model once, then measures cells and scores candidate shares."""

    def __init__(self, model: dict[str, Any], threads: int, crash: str | None) -> None:
        import torch

        from culturetune.model.loading import load_model

        torch.set_num_threads(threads)
        self.lm = load_model(model["name"], device=model["device"], dtype=model["dtype"],
                             trust_remote_code=model["trust_remote_code"])
        self.crash = crash
        # One scratch folder per actor, emptied when Ray restarts it and removed by close().
        import ray

        actor = ray.get_runtime_context().get_actor_id() or str(os.getpid())
        self.scratch = Path(tempfile.gettempdir()) / f"culturetune-worker-{actor}"
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(parents=True)
        self.runner: tuple[str, Any] | None = None
        self.objective: tuple[str, Any] | None = None

    def ping(self) -> int:
        return os.getpid()

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        import socket

        from culturetune.experiment.config import machine_info

        return {"name": self.lm.name, "dtype": self.lm.dtype, "device": self.lm.device,
                "machine": machine_info(self.lm), "host": socket.gethostname(), "pid": os.getpid()}

    def resolve_formats(self, config: dict[str, Any]) -> dict[str, Any]:
        """The grid's answer formats settled on this worker's model (``--format auto`` needs the
        model check, made where the model is), with what was said about them."""
        from culturetune.experiment.cells import resolve_formats
        from culturetune.experiment.config import ExperimentConfig

        cfg = ExperimentConfig.from_dict(config)
        said: list[str] = []
        resolve_formats(self.lm, cfg, said.append)
        return {"format": cfg.format, "other_formats": cfg.other_formats, "said": said}

    def _maybe_crash(self) -> None:
        if self.crash is None:
            return
        try:
            os.close(os.open(self.crash, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)  # the test hook: this process dies with its finished work

    def run_cell(self, config: dict[str, Any], spec: dict[str, Any], files: dict[str, bytes],
                 data: tuple[str, bytes] | None, bench_source: str | None) -> dict[str, Any]:
        """Measure one cell in a scratch folder holding the driver's ``files`` (a saved cell to
        complete, a tuning checkpoint to resume); returns the record and the run folder."""
        import json

        from culturetune.experiment.cells import CellRunner, CellSpec, run_path
        from culturetune.experiment.config import ExperimentConfig

        out = self.scratch / "out"
        shutil.rmtree(out, ignore_errors=True)
        for rel, blob in files.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(blob)
        out.mkdir(parents=True, exist_ok=True)
        settings = dict(config)
        if data is not None:
            copy = self.scratch / "data" / data[0]
            if not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(data[1])
            settings["data"] = str(copy)
        key = json.dumps([settings, bench_source], sort_keys=True, default=str)
        if self.runner is None or self.runner[0] != key:
            self.runner = None  # one experiment at a time: free the last one's caches first
            cfg = ExperimentConfig.from_dict(settings)
            self.runner = (key, CellRunner(self.lm, cfg, out, bench_source=bench_source))
        cell_spec = CellSpec.from_dict(spec)
        began = time.perf_counter()
        cell, _ = self.runner[1].run(cell_spec)
        seconds = time.perf_counter() - began
        run_files = {}
        if cell_spec.seed is not None:
            folder = run_path(out, cell_spec.target, cell_spec.method, cell_spec.seed)
            for path in sorted(folder.rglob("*")) if folder.exists() else []:
                if path.is_file() and not path.name.startswith("."):
                    run_files[path.relative_to(out).as_posix()] = path.read_bytes()
        self._maybe_crash()
        return {"cell": cell, "files": run_files, "seconds": seconds}

    def score(self, config: dict[str, Any], prompts: Any) -> Any:
        """Losses of a share of one step's candidates (``tuning.Objective``, as locally)."""
        import json

        from culturetune.tuning.config import TuneConfig
        from culturetune.tuning.search import make_objective

        key = json.dumps(config, sort_keys=True, default=str)
        if self.objective is None or self.objective[0] != key:
            self.objective = None
            self.objective = (key, make_objective(self.lm, TuneConfig.from_dict(config)))
        losses = self.objective[1](prompts)
        self._maybe_crash()
        return losses


# --------------------------------------------------------------------------- the cluster


@dataclass
class Event:
    """One change of a pool's jobs: ``start``, ``done`` or ``lost`` (its worker died)."""

    kind: str
    job: int
    worker: int
    done: int
    running: int
    failed: int
    result: Any = None
    error: str | None = None


@dataclass
class WorkerPool:
    """Ray actors that each hold the model; :meth:`run` keeps every one busy with one job at a
    time. A job whose worker died goes back to the front of the queue (at most
    :data:`MAX_TRIES` times); its worker takes jobs again once Ray has restarted it
    (``max_restarts``), and one that cannot be restarted is replaced by a new actor."""

    ray: Any
    make: Callable[[], Any]
    actors: list[Any]
    failed: int = 0
    replaced: int = 0
    info: list[dict[str, Any]] = field(default_factory=list)
    #: Pings to workers that died, until they answer (kept from one run to the next).
    waking: dict[Any, int] = field(default_factory=dict)

    def describe(self) -> list[dict[str, Any]]:
        """Each worker's model and machine (waits until every worker has loaded the model)."""
        if not self.info:
            try:
                self.info = self.ray.get([a.describe.remote() for a in self.actors])
            except self.ray.exceptions.RayError as exc:
                raise _worker_error(exc, "starting") from None
        return self.info

    def run(self, method: str, jobs: Sequence[tuple[Any, ...]],
            on_event: Callable[[Event], None] | None = None) -> list[Any]:
        """``actor.<method>(*job)`` for every job, as workers free up; results in job order."""
        ray = self.ray
        queue = deque(range(len(jobs)))
        waking = self.waking
        free = deque(w for w in range(len(self.actors)) if w not in waking.values())
        running: dict[Any, tuple[int, int]] = {}
        tries = [0] * len(jobs)
        results: list[Any] = [None] * len(jobs)
        done = 0

        def tell(kind: str, job: int, worker: int, **kw: Any) -> None:
            if on_event is not None:
                on_event(Event(kind, job, worker, done, len(running), self.failed, **kw))

        while queue or running:
            while queue and free:
                job, worker = queue.popleft(), free.popleft()
                ref = getattr(self.actors[worker], method).remote(*jobs[job])
                running[ref] = (job, worker)
                tell("start", job, worker)
            ready, _ = ray.wait([*running, *waking], num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in waking:
                    self._woken(ref, waking, free)
                    continue
                job, worker = running.pop(ref)
                try:
                    results[job] = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    self.failed += 1
                    tries[job] += 1
                    if tries[job] >= MAX_TRIES:
                        raise _worker_error(exc, f"job {job + 1}", tries[job]) from None
                    queue.appendleft(job)
                    waking[self.actors[worker].ping.remote()] = worker
                    tell("lost", job, worker, error=type(exc).__name__)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, CultureTuneError):
                        raise cause from None
                    raise _worker_error(exc, f"job {job + 1}") from None
                free.append(worker)
                done += 1
                tell("done", job, worker, result=results[job])
        return results

    def _woken(self, ref: Any, waking: dict[Any, int], free: deque[int]) -> None:
        """A ping to a worker that died has answered: free it, ping again while it restarts, or
        replace it when Ray cannot restart it."""
        ray = self.ray
        worker = waking.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError as exc:  # restarts exhausted, or it cannot start
            self.replaced += 1
            if self.replaced > MAX_TRIES * len(self.actors):
                raise _worker_error(exc, "starting a replacement") from None
            self.actors[worker] = self.make()
        except ray.exceptions.RayActorError:  # still restarting
            time.sleep(0.5)
        else:
            free.append(worker)
            return
        waking[self.actors[worker].ping.remote()] = worker


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__


def _worker_error(exc: BaseException, what: str, tries: int | None = None) -> CultureTuneError:
    text = str(exc)
    found = re.findall(r"CultureTuneError: (.+)", text)
    why = found[-1].strip() if found else _first_line(exc)
    lost = f" (its worker died {tries} times)" if tries else ""
    return CultureTuneError(f"a Ray worker failed in {what}{lost}: {why}")


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
        _check_reachable(self.settings.address)
        try:
            ray.init(address=self.settings.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = self.settings.address or "a local instance"
            raise CultureTuneError(
                f"cannot reach Ray at {where} ({_first_line(exc)}); start a cluster with `ray "
                "start --head` (then --ray-address auto on that machine, or the address it "
                "prints elsewhere), or leave --ray-address out to start one here") from None
        self.owned = True
        _errors_to_stderr(ray)
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
        remote = self.ray.remote(_Worker).options(
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
