"""A run's record of every evaluated vector and its loss, by optimizer step: kept in memory,
saved to the run folder's checkpoint (safetensors) and ``history.csv``, and loaded back (checked
against the run's settings) to resume."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.core.files import atomic_path, write_text
from culturetune.tuning import runfolder
from culturetune.tuning.runfolder import CHECKPOINT, HISTORY


class Record:
    """Every evaluated vector and its loss, grouped by optimizer step."""

    def __init__(
        self, z: np.ndarray, loss: np.ndarray, steps: list[int], history: list[dict[str, float]]
    ) -> None:
        self.z, self.loss, self.steps, self.history = z, loss, steps, history

    @classmethod
    def empty(cls, dim: int) -> Record:
        return cls(np.zeros((0, dim)), np.zeros(0), [], [])

    def add(self, z: np.ndarray, loss: np.ndarray, seconds: float) -> None:
        self.z = np.concatenate([self.z, z])
        self.loss = np.concatenate([self.loss, loss])
        self.steps.append(len(loss))
        self.history.append(
            {
                "evaluations": len(self.loss),
                "best_loss": float(self.loss.min()),
                "mean_loss": float(loss.mean()),
                "seconds": round(seconds, 3),
            }
        )

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        tensors = {
            "z": torch.from_numpy(self.z.copy()),
            "loss": torch.from_numpy(self.loss.copy()),
            "steps": torch.tensor(self.steps, dtype=torch.int64),
        }
        with atomic_path(folder / CHECKPOINT) as tmp:
            save_file(tensors, tmp)
        write_text(folder / HISTORY, history_csv(self.history))

    @classmethod
    def load(cls, folder: Path, dim: int) -> Record:
        from safetensors.torch import load_file

        path = folder / CHECKPOINT
        if not path.exists():
            return cls.empty(dim)
        try:
            t = load_file(path)
            z, loss, steps = t["z"].numpy(), t["loss"].numpy(), t["steps"].tolist()
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
            raise CultureTuneError(f"{path} is corrupt ({exc}); delete it to start over") from exc
        if (z.shape[1:] != (dim,) or len(z) != len(loss) or sum(steps) != len(loss)
                or min(steps, default=1) < 1):
            raise CultureTuneError(f"{path} does not match this run's settings; start a new run")
        history = runfolder.checked_history(folder / HISTORY, loss, steps)
        return cls(z, loss, steps, history)


def history_csv(history: list[dict[str, float]]) -> str:
    """A run's history (one row per optimizer step) as ``history.csv`` text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["evaluations", "best_loss", "mean_loss", "seconds"])
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a ``history.csv`` (none where there is no file)."""
    if not path.exists():
        return []
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


__all__ = ["Record", "history_csv", "read_history"]
