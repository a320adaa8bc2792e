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
    """Every evaluated vector and its loss, grouped by optimizer step; ``cost``: the
    forward-equivalents one evaluation cost (1 for a derivative-free search, a gradient step's
    measured forward + backward for Adam); ``state``: an optimizer's own tensors to resume from
    (Adam's position and moments)."""

    def __init__(
        self, z: np.ndarray, loss: np.ndarray, steps: list[int], history: list[dict[str, float]],
        cost: float = 1.0, state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.z, self.loss, self.steps, self.history = z, loss, steps, history
        self.cost, self.state = cost, dict(state or {})

    @classmethod
    def empty(cls, dim: int) -> Record:
        return cls(np.zeros((0, dim)), np.zeros(0), [], [])

    @property
    def spent(self) -> float:
        """Forward-equivalents spent so far (the budget's unit)."""
        return runfolder.spent(len(self.loss), self.cost)

    def add(self, z: np.ndarray, loss: np.ndarray, seconds: float) -> None:
        self.z = np.concatenate([self.z, z])
        self.loss = np.concatenate([self.loss, loss])
        self.steps.append(len(loss))
        self.history.append(
            {
                "evaluations": self.spent,
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
            **({} if self.cost == 1.0 else {"cost": torch.tensor(self.cost, dtype=torch.float64)}),
            **{f"state.{k}": v.detach().clone().contiguous() for k, v in self.state.items()},
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
            cost = float(t["cost"].item()) if "cost" in t else 1.0
            state = {k[len("state."):]: v for k, v in t.items() if k.startswith("state.")}
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
            raise CultureTuneError(f"{path} is corrupt ({exc}); delete it to start over") from exc
        if (z.shape[1:] != (dim,) or len(z) != len(loss) or sum(steps) != len(loss)
                or min(steps, default=1) < 1):
            raise CultureTuneError(f"{path} does not match this run's settings; start a new run")
        history = runfolder.checked_history(folder / HISTORY, loss, steps, cost)
        return cls(z, loss, steps, history, cost, state)


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
