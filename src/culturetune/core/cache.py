"""Where culturetune keeps what it can make again: dequantized and merged models, model checks."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where culturetune keeps dequantized models (``$CULTURETUNE_CACHE`` overrides)."""
    root = os.environ.get("CULTURETUNE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "culturetune"
