"""GGUF weights dequantized once into a safetensors model folder, one folder per dtype.

transformers dequantizes a GGUF file straight into the dtype the model runs in (bf16 weights are
float32's rounded, bit for bit, in half the bytes); the folder is saved whole or not at all, and
a file lock lets one process make it while others wait and then read it. Later loads read the
folder alone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from culturetune.core.cache import cache_dir
from culturetune.core.errors import CultureTuneError

#: A progress callback: one line on what takes a while (assembling, dequantizing, waiting).
Progress = Callable[[str], None]


def gguf_cache_folder(gguf: Path, dtype: str = "float32") -> Path:
    """The model folder holding a GGUF file's weights dequantized to ``dtype`` once it has been
    loaded (float32's name has no dtype: the folders made before dtypes were kept apart)."""
    key = f"{gguf.stem}-{gguf.stat().st_size}-{_fingerprint(gguf)}"
    return cache_dir() / "models" / (key + dtype_suffix(dtype))


def dtype_suffix(dtype: str) -> str:
    return "" if dtype == "float32" else f"-{dtype}"


def ready(folder: Path) -> bool:
    return (folder / "config.json").exists()


@contextmanager
def held(key: str, progress: Progress | None, what: str) -> Iterator[None]:
    """Hold the lock that lets one process prepare ``key``'s cache folder while others wait."""
    from filelock import FileLock, Timeout

    from culturetune.core.files import write_failure

    path = cache_dir() / "locks" / f"{key}.lock"
    lock = FileLock(str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if progress:
                progress(f"waiting for another process that is preparing {what} ...")
            lock.acquire()
    except OSError as exc:
        failure = write_failure(path, exc)
        if failure is None:
            raise
        raise failure.then("run the command again (CULTURETUNE_CACHE chooses another cache "
                           "folder)") from exc
    try:
        yield
    finally:
        lock.release()


def dequantize(gguf: Path, folder: Path, dtype: str, progress: Progress | None,
                what: str) -> None:
    """Dequantize ``gguf`` straight into ``dtype`` and save it as ``folder`` (whole or not at
    all). In bf16 this peaks lower than float32 and writes half the bytes; the weights are the
    same as float32's rounded to bf16, bit for bit."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress(f"dequantizing {what} to {dtype} (once: later loads read the cached copy) ...")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=getattr(torch, dtype))
    # transformers has already dequantized the weights to float; drop the GGUF marker so
    # that they can be saved as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    save_cache(model, tok, folder)


def load_folder(folder: Path, dtype: str, device: str, what: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    except Exception as exc:  # noqa: BLE001 - a damaged cache folder, whatever the cause
        raise CultureTuneError(f"the cached copy of {what} in {folder} is damaged "
                               f"({_first_line(exc)}); delete that folder and run again") from exc
    return model.to(device), tok


def save_cache(model: object, tok: object, cached: Path) -> None:
    """Save dequantized weights as ``cached``, whole or not at all: written into a temporary
    folder beside it, then renamed. A failure to write (a full disk) is a ``WriteError``."""
    from culturetune.core.files import temp_folder, write_failure

    tmp = temp_folder(cached.parent, ".tmp-")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        os.replace(tmp, cached)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if (cached / "config.json").exists():  # another process cached it meanwhile
            return
        failure = write_failure(cached, exc)
        if failure is None:
            raise
        raise failure.then("run the command again (the model's dequantized copy is cached "
                           "there; CULTURETUNE_CACHE chooses another folder)") from exc


def _fingerprint(path: Path, chunk: int = 2**20) -> str:
    """A short content hash (start, middle and end of the file): two different GGUF files of the
    same name and size must not share a cache folder."""
    import hashlib

    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for at in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            fh.seek(at)
            digest.update(fh.read(chunk))
    return digest.hexdigest()[:12]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"
