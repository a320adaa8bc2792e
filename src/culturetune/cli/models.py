"""``culturetune models``: the models culturetune knows by name, whether each is installed, where
it is cached, and what its cached model checks say. Loads no model (and no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from culturetune.cli.app import command
from culturetune.cli.common import print_json
from culturetune.cli.options import JsonOpt
from culturetune.core import registry
from culturetune.core.cache import cache_dir
from culturetune.core.registry import KnownModel

#: The answer formats a model check is made in (a cached check without one is ``number``).
from culturetune.instrument.formats import FORMATS
from culturetune.report.console import print_models


@command("models")
def models(as_json: JsonOpt = False) -> None:
    """List the models known by name: what each GGUF file is, the packages that ship it, its
    size and the hash checked, licence, installed, cached, model checks."""
    report = known_models()
    if as_json:
        print_json(report)
    else:
        print_models(report)


def known_models() -> dict[str, Any]:
    """Every known model with its install state, cache folders and cached model checks."""
    checks = cached_checks()
    return {"cache": str(cache_dir()),
            "models": [_row(m, checks.get(m.name, {})) for m in registry.KNOWN.values()]}


def _row(m: KnownModel, checks: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    problems = registry.problems(m)
    cached = cache_folders(m)
    return {
        "name": m.name, "display": m.display, "hub_id": m.hub_id, "packages": list(m.packages),
        "version": m.version, "install": m.install, "extra": m.extra,
        "gguf_bytes": m.gguf_bytes, "sha256": m.sha256, "quantization": m.quantization,
        "parameters": m.parameters, "licence": m.licence, "note": m.note,
        "origin": m.origin, "shipped": m.shipped, "checked": m.checked,
        "installed": not problems, "problems": problems,
        "cached": cached, "cache_bytes": sum(c["bytes"] for c in cached),
        "checks": {f: checks.get(f, []) for f in FORMATS},
        "check_command": f"culturetune check-model --model {m.name}",
    }


def cache_folders(m: KnownModel) -> list[dict[str, Any]]:
    """``m``'s cached copies: dequantized folders (one per dtype) and an assembled GGUF file that
    a stopped first load left."""
    out = []
    models = cache_dir() / "models"
    found = sorted(models.glob(f"{m.cache_stem}*")) if models.is_dir() else []
    for folder in found:
        if folder.name != m.cache_stem and not folder.name.startswith(f"{m.cache_stem}-"):
            continue
        if (folder / "config.json").is_file():
            out.append({"path": str(folder), "dtype": _dtype(folder), "bytes": _size(folder)})
    gguf = cache_dir() / "gguf" / f"{m.cache_stem}.gguf"
    if gguf.is_file():
        out.append({"path": str(gguf), "dtype": "gguf", "bytes": gguf.stat().st_size})
    return out


def _dtype(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return str(config.get("dtype") or config.get("torch_dtype") or "float32")
    except (OSError, ValueError, AttributeError):
        return "unknown"


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def cached_checks() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The cached model checks of the current version (``cache_dir()/checks/*.json``), by model
    name and answer format, newest first."""
    from culturetune.reading.check import CHECK_VERSION

    folder = cache_dir() / "checks"
    entries = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # a broken entry is measured again by check-model; not listed here
        if not isinstance(d, dict) or d.get("version") != CHECK_VERSION or "model" not in d:
            continue
        entries.append((mtime, d, path))
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for _, d, path in sorted(entries, key=lambda e: -e[0]):
        fmt = str(d.get("format") or "number")
        out.setdefault(str(d["model"]), {}).setdefault(fmt, []).append({
            "instrument": d.get("instrument"), "verdict": d.get("verdict"),
            "file": str(path)})
    return out
