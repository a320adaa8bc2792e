"""Putting a known model's GGUF file together from its part packages (torch-free).

The parts (``<module>/data/partNN.bin``, one per package) are concatenated in part order into
``cache_dir()/gguf/<name>-<sha256[:12]>.gguf``, counting the bytes and hashing them while they
stream, and the file is put in place only when its size and sha256 are the published ones. A
wrong size or hash, a part that cannot be read, or a full disk leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from culturetune.core import registry
from culturetune.core.cache import cache_dir
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import atomic_path
from culturetune.core.registry import KnownModel

CHUNK = 8 * 2**20


def gguf_path(model: KnownModel) -> Path:
    """Where ``model``'s assembled GGUF file goes (it stays only until it is dequantized)."""
    return cache_dir() / "gguf" / f"{model.cache_stem}.gguf"


def assembled_gguf(model: KnownModel, progress: Callable[[str], None] | None = None) -> Path:
    """``model``'s GGUF file, assembled from its installed parts and verified (size and sha256),
    or the verified copy an earlier load left (it is put in place only once verified)."""
    parts = registry.file_paths(model)  # one error naming the install command
    dest = gguf_path(model)
    if dest.is_file() and dest.stat().st_size == model.gguf_bytes:
        return dest
    if progress:
        progress(f"assembling {model.name} from {len(parts)} packages "
                 f"({model.gguf_bytes / 2**20:,.0f} MiB) ...")
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        digest, size = hashlib.sha256(), 0
        for part in parts:
            for chunk in _chunks(part, model):
                size += len(chunk)
                if size > model.gguf_bytes:
                    raise _mismatch(model, f"its parts hold more than the {model.gguf_bytes:,} "
                                    "bytes of the file")
                digest.update(chunk)
                _write(out, chunk)
        if size != model.gguf_bytes:
            raise _mismatch(model, f"its parts hold {size:,} bytes, not {model.gguf_bytes:,}")
        if digest.hexdigest() != model.sha256:
            raise _mismatch(model, f"the file they make has sha256 {digest.hexdigest()[:16]}…, "
                            f"not {model.sha256[:16]}…")
    return dest


def _chunks(part: Path, model: KnownModel):
    """The bytes of one part, a chunk at a time (a part that cannot be read is an error that says
    to reinstall, never a write error)."""
    try:
        with part.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    except OSError as exc:
        raise CultureTuneError(f"cannot read {part} ({exc.strerror or exc}); reinstall "
                               f"{model.name}: {_reinstall(model)}") from exc


def _write(out: BinaryIO, chunk: bytes) -> None:
    out.write(chunk)


def _reinstall(model: KnownModel) -> str:
    return f"`{model.reinstall}`"


def _mismatch(model: KnownModel, what: str) -> CultureTuneError:
    return CultureTuneError(
        f"the parts of {model.name} do not make the published GGUF file: {what}; a part package "
        f"is damaged or not the published one, so nothing was cached: reinstall with "
        f"{_reinstall(model)}")
