"""The package version and the versions a result records (one place, below every module that
records them)."""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"


def package_versions(*packages: str, python: bool = False) -> dict[str, str]:
    """``{"culturetune": ..., ["python": ...,] package: version, ...}`` in that order: what a
    tuned prompt or an experiment records about the code that made it. Each package is imported
    here (none of them is imported before it is asked for)."""
    out = {"culturetune": __version__}
    if python:
        out["python"] = sys.version.split()[0]
    for name in packages:
        out[name] = importlib.import_module(name).__version__
    return out
