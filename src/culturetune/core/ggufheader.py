"""The GGUF header check: is a file a complete GGUF model (magic, version, a header that does
not run past the end, tensor data not cut short)? Only the header is read.

The ``gguf`` package's ``GGUFReader`` is not used here: it memory-maps the whole file and builds a
view of every tensor (seconds on a 100 MB model), and it fails with the same numpy ``ValueError``
whether the header or the tensor data is cut short, where this check tells the two apart.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import BinaryIO

from culturetune.core.errors import CultureTuneError

_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def check_gguf(path: str | Path) -> None:
    """Refuse a file that is not a complete GGUF model: wrong magic, an unknown version, a header
    that runs past the end, or tensor data cut short. Reads the header only."""
    path = Path(path).expanduser()
    try:
        found = path.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise CultureTuneError(f"GGUF file {path} not found")
    size = path.stat().st_size
    bad = f"{path} is not a usable GGUF model file"
    if size == 0:
        raise CultureTuneError(f"{bad}: it is empty")
    try:
        with path.open("rb") as fh:
            needed = _gguf_needed_bytes(fh, size)
    except _Truncated:
        raise CultureTuneError(f"{bad}: its header is cut short (truncated download or copy?)"
                               ) from None
    except (ValueError, struct.error) as exc:
        raise CultureTuneError(f"{bad}: {exc}") from None
    if needed > size:
        raise CultureTuneError(f"{bad}: it is truncated ({size:,} bytes, its header describes "
                               f"{needed:,}); download or copy it again")


class _Truncated(Exception):
    pass


def _gguf_needed_bytes(fh: BinaryIO, size: int) -> int:
    """Bytes a GGUF file needs for all its tensors, read from the header (v2/v3)."""
    from gguf.constants import GGML_QUANT_SIZES

    def read(n: int) -> bytes:
        if n > size:
            raise _Truncated
        b = fh.read(n)
        if len(b) != n:
            raise _Truncated
        return b

    def u32() -> int:
        return struct.unpack("<I", read(4))[0]

    def u64() -> int:
        return struct.unpack("<Q", read(8))[0]

    def string() -> bytes:
        return read(u64())

    def skip(kind: int, count: int = 1) -> None:
        if kind in _GGUF_SCALARS:
            n = _GGUF_SCALARS[kind] * count
            if fh.tell() + n > size:
                raise _Truncated
            fh.seek(n, 1)
        elif kind == 8:
            for _ in range(count):
                n = u64()
                if fh.tell() + n > size:
                    raise _Truncated
                fh.seek(n, 1)
        elif kind == 9:
            for _ in range(count):
                inner, n = u32(), u64()
                skip(inner, n)
        else:
            raise ValueError(f"unknown metadata value type {kind}")

    if read(4) != b"GGUF":
        raise ValueError("it does not start with the GGUF magic bytes")
    version = u32()
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_kv = u64(), u64()
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ValueError("its header counts are implausible")
    alignment = 32
    for _ in range(n_kv):
        key = string()
        kind = u32()
        if key == b"general.alignment" and kind == 4:
            alignment = u32() or 32
        else:
            skip(kind)
    end = 0
    for _ in range(n_tensors):
        string()
        dims = [u64() for _ in range(u32())]
        kind, offset = u32(), u64()
        if kind not in GGML_QUANT_SIZES:
            raise ValueError(f"unknown tensor type {kind}")
        block, type_size = GGML_QUANT_SIZES[kind]
        elements = math.prod(dims)
        end = max(end, offset + elements // block * type_size)
    start = fh.tell()
    start += -start % alignment
    return start + end
