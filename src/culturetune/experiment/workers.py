"""Ray's workers: the actor that holds the model, and the pool that keeps every actor busy.

:class:`WorkerPool` schedules jobs itself rather than through Ray's task retries
(``max_task_retries``): Ray resubmits a lost task to the same actor silently, so the driver
would see no ``lost`` event (the progress line and the failed count the grid reports), and the
job would wait for that actor to restart instead of going to the front of the queue for any
free worker. Ray still restarts a dead actor (``max_restarts``); the pool pings it until it
answers, and replaces one that cannot be restarted.

Test hook: where the environment variable :data:`CRASH_ENV` names a file that does not exist,
the first worker job to create it kills its own process (``os._exit``) after computing and
before returning, so tests can check that lost work is redone.
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
from typing import Any

from culturetune.core.errors import CultureTuneError

CRASH_ENV = "CULTURETUNE_RAY_CRASH_ONCE"
#: Times one job may lose its worker before the run gives up (a job that kills every worker).
MAX_TRIES = 3


class Worker:
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
                raise worker_error(exc, "starting") from None
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
                        raise worker_error(exc, f"job {job + 1}", tries[job]) from None
                    queue.appendleft(job)
                    waking[self.actors[worker].ping.remote()] = worker
                    tell("lost", job, worker, error=type(exc).__name__)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, CultureTuneError):
                        raise cause from None
                    raise worker_error(exc, f"job {job + 1}") from None
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
                raise worker_error(exc, "starting a replacement") from None
            self.actors[worker] = self.make()
        except ray.exceptions.RayActorError:  # still restarting
            time.sleep(0.5)
        else:
            free.append(worker)
            return
        waking[self.actors[worker].ping.remote()] = worker


def first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__


def worker_error(exc: BaseException, what: str, tries: int | None = None) -> CultureTuneError:
    text = str(exc)
    found = re.findall(r"CultureTuneError: (.+)", text)
    why = found[-1].strip() if found else first_line(exc)
    lost = f" (its worker died {tries} times)" if tries else ""
    return CultureTuneError(f"a Ray worker failed in {what}{lost}: {why}")
