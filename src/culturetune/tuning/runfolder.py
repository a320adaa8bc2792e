"""Run folders: where a run may write, one process at a time, and what ``--resume`` may change.

- A new run writes only into a folder that does not exist yet or is empty. A folder holding a
  run (``run.json``) is continued with ``--resume``; a folder of other files is refused.
- A folder is held by one process at a time: an OS lock (``filelock``) on ``.culturetune.lock``
  inside it, removed again at the end. The operating system releases the lock when the process
  ends, even after ``kill -9`` (the file may then stay; it holds nothing), so there are no stale
  locks. A second process on the same folder is refused at once, never kept waiting.
- ``--resume`` keeps the run's settings. Only the budget may change: a larger one extends the
  run, a smaller one (not below the evaluations already made) ends it sooner.
- An experiment's folder follows the same rules, marked by ``cells/``, ``runs/`` or
  ``results.json`` instead of ``run.json`` (checked by
  :func:`culturetune.experiment.folder.check_experiment`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from culturetune.core.errors import CultureTuneError
from culturetune.core.files import os_cause, set_mode
from culturetune.core.inputs import check_path, exists, is_dir, is_file

if TYPE_CHECKING:
    from culturetune.tuning.config import TuneConfig

LOCK_FILE = ".culturetune.lock"
#: Same as ``tuning.config.RUN_FILE`` (kept here too: this module loads no torch, and config does).
RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.safetensors"
HISTORY = "history.csv"
HISTORY_FIELDS = ("evaluations", "best_loss", "mean_loss", "seconds")

#: Folders this process holds: resolved path -> [lock, nesting depth].
_held: dict[str, list[Any]] = {}


# --------------------------------------------------------------------------- folder rules


def entries(folder: Path) -> list[str]:
    """What a folder holds, the lock file left out (sorted)."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
    except OSError as exc:
        raise CultureTuneError(f"cannot read folder {folder}: {exc.strerror or exc}") from None


def listing(names: Sequence[str]) -> str:
    """The first five names, and how many more."""
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_writable(folder: Path, option: str) -> None:
    """The folder, or where it does not exist yet the nearest folder above it, takes new files."""
    probe = folder
    while not exists(probe) and probe.parent != probe:
        probe = probe.parent
    if not is_dir(probe):
        raise CultureTuneError(f"{option} {folder}: {probe} is a file, not a folder; choose "
                               "another place")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".culturetune-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CultureTuneError(f"{option} {folder}: cannot write in {probe} ({os_cause(exc)}); "
                               "choose a folder you can write to") from None


def check_new_run(folder: str | Path, option: str = "--out") -> Path:
    """A folder a new tuning run may write into: new, or empty."""
    path = check_path(folder, option)
    if exists(path) and not is_dir(path):
        raise CultureTuneError(f"{option} {path} is a file; give a new or empty folder")
    if is_dir(path):
        names = entries(path)
        if RUN_FILE in names or CHECKPOINT in names:
            raise CultureTuneError(f"{path} already holds a tuning run; continue it with "
                                   f"--resume {path} or choose another --out")
        if names:
            raise CultureTuneError(
                f"{option} {path} holds files that are not a culturetune run "
                f"({listing(names)}); a run writes only into a new or empty folder: choose "
                "another --out")
    check_writable(path, option)
    return path


def check_run(folder: str | Path, option: str = "--resume") -> Path:
    """A folder holding a tuning run (``run.json``) that this user can write to."""
    path = check_path(folder, option)
    if not is_dir(path):
        raise CultureTuneError(f"nothing to resume in {path}: no such folder")
    if not is_file(path / RUN_FILE):
        raise CultureTuneError(f"nothing to resume in {path}: {RUN_FILE} is missing")
    check_writable(path, option)
    return path


# --------------------------------------------------------------------------- the lock


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def same_folder(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same folder (whether or not it exists yet)."""
    return _key(Path(a)) == _key(Path(b))


@contextlib.contextmanager
def claim(folder: str | Path, option: str = "--out") -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for this process; another process is refused.

    Nested claims of the same folder in one process are fine. The lock file goes again when
    this call made it, and so do the folders it made when nothing was put in them.
    """
    path = check_path(folder, option)
    key = _key(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield path
        finally:
            _held[key][1] -= 1
        return
    if exists(path) and not is_dir(path):
        raise CultureTuneError(f"{option} {path} is a file; give a folder")
    check_writable(path, option)
    created = []
    probe = path
    while not exists(probe) and probe.parent != probe:
        created.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CultureTuneError(f"{option} {path}: cannot create the folder "
                               f"({os_cause(exc)})") from None
    fresh = not exists(path / LOCK_FILE)
    lock = _acquire(path, option)
    if fresh:
        set_mode(path / LOCK_FILE)  # older filelock versions give 0o644 whatever the umask
    _held[key] = [lock, 1]
    try:
        yield path
    finally:
        del _held[key]
        try:
            if fresh:  # safe: a lock taken on a removed file is refused (see _acquire)
                (path / LOCK_FILE).unlink(missing_ok=True)
        finally:
            lock.release()
        for p in created:  # innermost first; stops at the first one that is not empty
            try:
                p.rmdir()
            except OSError:
                break


def _acquire(path: Path, option: str) -> Any:
    from filelock import FileLock, Timeout

    lock_path = path / LOCK_FILE

    def same_file(fd: int) -> None:
        # The lock file may have been removed by a holder that just finished; a lock on the
        # removed file would hold nothing.
        if os.stat(lock_path).st_ino != os.fstat(fd).st_ino:
            raise Timeout(str(lock_path))

    try:
        lock = FileLock(str(lock_path), timeout=0, on_acquired=same_file)
    except TypeError:  # an older filelock without on_acquired
        lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire(blocking=False)
    except (Timeout, FileNotFoundError):
        raise CultureTuneError(
            f"{path} is in use by another culturetune process (it holds {lock_path}); wait for "
            f"that run to finish or stop it, or choose another folder than {option} {path}"
        ) from None
    except OSError as exc:
        raise CultureTuneError(f"cannot lock {path}: cannot write {lock_path} ({os_cause(exc)}); "
                               "free some space or choose a folder you can write to") from None
    return lock


def forget_unstarted(folder: Path) -> None:
    """Remove the ``run.json`` of a run that stopped before its first checkpoint (nothing to
    resume), so that the folder takes a new run again."""
    if not exists(folder / CHECKPOINT):
        (folder / RUN_FILE).unlink(missing_ok=True)


# --------------------------------------------------------------------------- resuming


def read_checkpoint(folder: Path) -> tuple[np.ndarray, np.ndarray, list[int], float] | None:
    """The recorded vectors, losses, step sizes and forward-equivalents per evaluation (1 for a
    derivative-free search; an Adam step's counted forward + backward) (``None`` when there is no
    checkpoint yet), checked for consistency; read without torch and without the model."""
    path = folder / CHECKPOINT
    if not exists(path):
        return None
    try:
        from safetensors.numpy import load_file

        t = load_file(str(path))
        z, loss, steps = t["z"], t["loss"], [int(s) for s in t["steps"].tolist()]
        cost = float(t["cost"].item()) if "cost" in t else 1.0
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
        raise CultureTuneError(f"{path} is corrupt ({exc}); delete it to start the run over"
                               ) from None
    if (z.ndim != 2 or loss.ndim != 1 or len(z) != len(loss) or sum(steps) != len(loss)
            or any(s < 1 for s in steps)):
        raise CultureTuneError(f"{path} is inconsistent (vectors, losses and steps do not "
                               "match); delete it to start the run over")
    return z, loss, steps, cost


def spent(evaluations: int, cost: float) -> float:
    """Forward-equivalents of ``evaluations`` that cost ``cost`` each (the budget's unit): the
    count itself for a derivative-free search (cost 1)."""
    return evaluations if cost == 1.0 else round(evaluations * cost, 6)


def history_rows(loss: np.ndarray, steps: Sequence[int],
                 cost: float = 1.0) -> list[dict[str, float]]:
    """``history.csv`` rows as the checkpoint implies them (seconds left at 0); ``evaluations``
    counts forward-equivalents (``cost`` per recorded evaluation)."""
    rows, at = [], 0
    for n in steps:
        at += n
        rows.append({"evaluations": float(spent(at, cost)), "best_loss": float(np.min(loss[:at])),
                     "mean_loss": float(np.mean(loss[at - n : at])), "seconds": 0.0})
    return rows


def checked_history(path: Path, loss: np.ndarray, steps: Sequence[int],
                    cost: float = 1.0) -> list[dict[str, float]]:
    """``history.csv`` checked against the checkpoint, which is the record of truth.

    Rows the checkpoint has but the file lacks (a crash between the two writes, or a deleted
    file) are rebuilt, carrying the last known time; a row that contradicts the checkpoint or
    does not parse means the file was edited, which is refused with what to do.
    """
    expected = history_rows(loss, steps, cost)
    if not exists(path):
        return expected
    fix = (f"restore it, or delete it and resume again to rebuild it from {CHECKPOINT} (the "
           "timings are then lost)")
    try:
        text = path.read_text(encoding="utf-8")
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != HISTORY_FIELDS:
            raise ValueError(f"its header is not {','.join(HISTORY_FIELDS)}")
        rows = []
        for n, row in enumerate(reader, start=1):
            if None in row or None in row.values():
                raise ValueError(f"row {n} does not have {len(HISTORY_FIELDS)} cells")
            values = {k: float(v) for k, v in row.items()}
            if not all(math.isfinite(v) for v in values.values()) or values["seconds"] < 0:
                raise ValueError(f"row {n} holds a value that is not a finite number")
            rows.append(values)
    except (OSError, UnicodeError, ValueError, csv.Error) as exc:
        raise CultureTuneError(f"{path} cannot be read ({exc}); {fix}") from None
    for n, (got, want) in enumerate(zip(rows, expected, strict=False), start=1):
        for k in ("evaluations", "best_loss", "mean_loss"):
            if not math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-9):
                raise CultureTuneError(f"{path} row {n} does not match {CHECKPOINT} ({k} "
                                       f"{got[k]:g}, the checkpoint says {want[k]:g}); it was "
                                       f"edited: {fix}")
    rows = rows[: len(expected)]
    last = rows[-1]["seconds"] if rows else 0.0
    for want in expected[len(rows):]:
        rows.append({**want, "seconds": last})
    return rows


def recorded_evaluations(folder: Path) -> float:
    """Evaluations (forward-equivalents) the checkpoint in ``folder`` records (0 without one)."""
    record = read_checkpoint(folder)
    return 0 if record is None else spent(len(record[1]), record[3])


def check_resumable(folder: Path) -> None:
    """Everything ``--resume`` reads, checked without the model: settings, checkpoint, history."""
    from culturetune.tuning.config import load_run_config

    load_run_config(folder)
    record = read_checkpoint(folder)
    if record is not None:
        checked_history(folder / HISTORY, record[1], record[2], record[3])


def _comparable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _same_model(saved: str, asked: str) -> bool:
    if saved == asked:
        return True
    try:
        return exists(Path(saved)) and os.path.samefile(Path(saved).expanduser(),
                                                         Path(asked).expanduser())
    except OSError:
        return False


def resume_conflicts(saved: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str]:
    """The settings in ``asked`` that differ from the saved run's (budget, an empty model name
    and an ``auto`` format or init never conflict), as ``field: saved -> asked`` lines."""
    out = []
    for key, value in asked.items():
        if key == "budget" or key not in saved:
            continue
        if key in ("format", "init") and value == "auto":
            continue  # a run keeps what ``auto`` resolved to when it started
        if key == "model":
            if value and saved[key] and not _same_model(str(saved[key]), str(value)):
                out.append(f"model: the run has {saved[key]!r}, not {value!r}")
            continue
        a, b = _comparable(saved[key]), _comparable(value)
        if key == "target":
            a = {k: a.get(k) for k in ("name", "scores")}
            b = {k: b.get(k) for k in ("name", "scores")}
        if a != b:
            out.append(f"{key}: the run has {_show(a)}, not {_show(b)}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict) and "scores" in value:
        scores = {k: v for k, v in value["scores"].items() if v is not None}
        return f"{value.get('name')} {scores}"
    return repr(value)


def resumed(folder: Path, given: TuneConfig | None = None) -> TuneConfig:
    """The saved settings of the run in ``folder``, with ``given``'s budget (checked against the
    evaluations made). Any other difference from ``given`` is refused."""
    from culturetune.tuning.config import load_run_config

    saved = load_run_config(folder)
    if given is None:
        return saved
    conflicts = resume_conflicts(saved.to_dict(), given.to_dict())
    if conflicts:
        raise CultureTuneError(
            f"cannot resume {folder} with other settings ({'; '.join(conflicts)}); a resumed "
            "run keeps its settings (only the budget may change): leave those options out, or "
            "start a new run in another folder")
    done = recorded_evaluations(folder)
    if given.budget < done:
        raise CultureTuneError(f"{folder} has already made {done} evaluations; --budget must be "
                               f"at least {done} (a larger budget extends the run)")
    saved.budget = given.budget
    return saved
