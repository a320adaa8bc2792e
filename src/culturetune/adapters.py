"""LoRA adapters on a base model: ``--model BASE --adapter DIR`` and the bundled respondent.

An adapter folder is PEFT's LoRA format (``adapter_config.json`` + ``adapter_model.safetensors``;
pickled ``.bin`` weights are refused). It is loaded by PEFT's own code
(``PeftModel.from_pretrained``), merged into the base weights (``merge_and_unload``) and the
merged model cached as safetensors under ``~/.cache/culturetune/models/``, like a dequantized
GGUF file, so later loads are plain model loads. Every culturetune command then reads the merged
model like any other local model folder.

``--model respondent`` is the bundled default model with the bundled respondent adapter
(:mod:`culturetune.respondent`): a positive control that answers Likert items by content.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from culturetune.errors import CultureTuneError

RESPONDENT = "respondent"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def respondent_adapter() -> Path:
    """The bundled respondent's adapter folder."""
    return Path(__file__).parent / "data" / "respondent"


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
    from culturetune.models import cache_dir

    slug = "".join(c if c.isalnum() else "-" for c in Path(base).name or base).strip("-")[:40]
    return cache_dir() / "models" / f"merged-{slug}-{fingerprint(adapter)}"


def merge(base: str | None, adapter: str | Path, *, trust_remote_code: bool = False) -> Path:
    """The folder of ``base`` (``None``: the bundled default) with ``adapter`` merged in, made
    (once, in float32 on the CPU) with PEFT's loading code and cached."""
    import torch

    from culturetune.models import DEFAULT_MODEL, _save_cache, load_model

    path = check_adapter(adapter)
    base = base or DEFAULT_MODEL
    cached = merged_folder(base, path)
    if (cached / "config.json").exists():
        return cached
    from peft import PeftModel

    lm = load_model(None if base == DEFAULT_MODEL else base, device="cpu", dtype="float32",
                    trust_remote_code=trust_remote_code)
    try:
        with torch.no_grad():
            model = PeftModel.from_pretrained(lm.model, str(path)).merge_and_unload()
    except Exception as exc:  # noqa: BLE001 - PEFT's errors on a mismatched adapter vary
        raise CultureTuneError(
            f"the adapter in {path} does not fit {base} ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'no details'}); "
            "give the base model it was trained on (its adapter_config.json names it)") from exc
    _save_cache(model, lm.tokenizer, cached)
    return cached


__all__ = ["RESPONDENT", "check_adapter", "merge", "merged_folder", "respondent_adapter"]
