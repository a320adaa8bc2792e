"""LoRA adapters on a base model: ``--model BASE --adapter DIR``.

An adapter folder is PEFT's LoRA format (``adapter_config.json`` + ``adapter_model.safetensors``;
pickled ``.bin`` weights are refused). It is loaded by PEFT's own code
(``PeftModel.from_pretrained``), merged into the base weights (``merge_and_unload``) and the
merged model cached as safetensors under ``~/.cache/culturetune/models/``, like a dequantized
GGUF file, so later loads are plain model loads. This module checks the folder and says where
its merge is cached; the merge itself is :func:`culturetune.model.loading.merge_adapter`, which
loads the base model (so that loading sits above this module, not beside it). Every culturetune
command then reads the merged model like any other local model folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from culturetune.core.cache import cache_dir
from culturetune.core.errors import CultureTuneError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def check_adapter(adapter: str | Path, option: str = "--adapter") -> Path:
    """A PEFT LoRA folder, checked without loading anything heavy."""
    raw = str(adapter).strip()
    if not raw:
        raise CultureTuneError(f"{option} is empty; give a PEFT LoRA folder (adapter_config.json "
                               "+ adapter_model.safetensors)")
    path = Path(raw).expanduser()
    if not path.exists():
        raise CultureTuneError(f"{option} {raw}: folder not found")
    if not path.is_dir():
        raise CultureTuneError(f"{option} {raw}: not a folder; give a PEFT LoRA folder "
                               "(adapter_config.json + adapter_model.safetensors)")
    if not (path / "adapter_model.safetensors").is_file():
        pickled = (path / "adapter_model.bin").is_file()
        raise CultureTuneError(
            f"{option} {raw} has no adapter_model.safetensors"
            + ("; its adapter_model.bin is a pickle, which culturetune never loads: convert it "
               "with safetensors" if pickled else "; give a folder saved by PEFT's "
               "save_pretrained"))
    try:
        cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CultureTuneError(f"{option} {raw} has no adapter_config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CultureTuneError(f"{option} {raw}: adapter_config.json is not valid JSON "
                               f"({exc})") from None
    kind = cfg.get("peft_type") if isinstance(cfg, dict) else None
    if kind != "LORA":
        raise CultureTuneError(
            f"{option} {raw} is a {kind or 'unknown'} adapter; --adapter merges LoRA adapters "
            "only (a culturetune prompt folder is a soft prompt: load it with --prompt)")
    return path


def fingerprint(adapter: Path) -> str:
    """A content hash of an adapter folder's two files."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        digest.update((adapter / name).read_bytes())
    return digest.hexdigest()[:12]


def merged_folder(base: str, adapter: Path) -> Path:
    """Where the merged weights of ``base`` + ``adapter`` are cached."""
    slug = "".join(c if c.isalnum() else "-" for c in Path(base).name or base).strip("-")[:40]
    return cache_dir() / "models" / f"merged-{slug}-{fingerprint(adapter)}"


__all__ = ["check_adapter", "merged_folder"]
