"""An experiment's output folder: new, empty, or the experiment's own earlier folder.

Held like a run folder (:func:`culturetune.tuning.runfolder.claim`); marked by ``cells/``,
``runs/`` or ``results.json``.
"""

from __future__ import annotations

from pathlib import Path

from culturetune.core.errors import CultureTuneError
from culturetune.core.inputs import check_path, exists, is_dir
from culturetune.tuning.runfolder import check_writable, entries, listing

EXPERIMENT_MARKERS = ("cells", "runs", "results.json")


def check_experiment(folder: str | Path, option: str = "--out") -> Path:
    """A folder an experiment may write into: new, empty, or an experiment's own folder."""
    path = check_path(folder, option)
    if exists(path) and not is_dir(path):
        raise CultureTuneError(f"{option} {path} is a file; give a new, empty or experiment "
                               "folder")
    if is_dir(path):
        names = entries(path)
        if names and not set(names) & set(EXPERIMENT_MARKERS):
            raise CultureTuneError(
                f"{option} {path} holds files that are not a culturetune experiment "
                f"({listing(names)}); an experiment writes only into a new or empty folder or "
                "its own earlier folder: choose another --out")
    check_writable(path, option)
    return path
