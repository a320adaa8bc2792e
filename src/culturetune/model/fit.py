"""Does a model fit in memory? Checked before it loads (torch-free).

A model needs its weights in the dtype it runs in, plus :data:`RUNTIME_BYTES` (torch itself, the
tokenizer, a forward pass of a few prompts). A first load of a GGUF file also reads the file
while it dequantizes it, so it needs the file's size on top. Measured on this project's machine
(benchmarks/bench_models.py, docs/models.md), first loads peaked 1.0-1.4 GB above the weights
and the file: Qwen2.5-Coder-1.5B-Instruct at 5.81 GB in bf16 (estimate 6.01) and 9.29 GB in
float32 (9.57), the 0.5B model at 3.13 GB in bf16 (3.09); later loads peak near the weights.
The parameters are counted from the registry, a GGUF file's header or a folder's safetensors
headers; a hub id is not checked (its size is not known before download).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from culturetune.core import memory, registry

RUNTIME_BYTES = memory.GIB + memory.GIB // 4
BYTES_PER_VALUE = {"float32": 4, "bfloat16": 2, "float16": 2}


def parameters(name: str) -> int | None:
    """The number of weights ``name`` loads (a known name, a ``.gguf`` file or a folder of
    safetensors), or ``None`` where that is not known before loading."""
    known = registry.lookup(name)
    if known is not None:
        return known.parameters
    path = Path(name).expanduser()
    try:
        if name.endswith(".gguf") and path.is_file():
            return gguf_parameters(path)
        if path.is_dir():
            return safetensors_parameters(path)
    except Exception:  # noqa: BLE001 - a damaged file is reported by the load itself
        return None
    return None


def gguf_parameters(path: Path) -> int:
    """The number of weights in a GGUF file's tensors (read from its header)."""
    from gguf import GGUFReader

    return sum(int(t.n_elements) for t in GGUFReader(str(path)).tensors)


def safetensors_parameters(folder: Path) -> int | None:
    """The number of weights in a folder's ``*.safetensors`` files (read from their headers), or
    ``None`` where it has none."""
    total, found = 0, False
    for file in sorted(folder.glob("*.safetensors")):
        with file.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100 * 2**20:
                raise ValueError(f"{file}: implausible header")
            header = json.loads(fh.read(size))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        found = True
    return total if found else None


def require(name: str, params: int, dtype: str, device: str, gguf_bytes: int = 0) -> None:
    """Refuse to load ``name`` (``params`` weights, run in ``dtype`` on ``device``) where it
    would not fit; ``gguf_bytes``: the GGUF file a first load dequantizes (0: already cached)."""
    weights = params * BYTES_PER_VALUE.get(dtype, 4)
    first = f", dequantized from its {gguf_bytes / memory.GIB:.1f} GiB GGUF file on this first " \
            "load" if gguf_bytes else ""
    what = f"loading {name} ({params / 1e9:.2f} B parameters in {dtype}{first})"
    smaller = "; choose a smaller model (culturetune models)" + (
        " or --dtype bfloat16" if dtype == "float32" else "")
    # The weights are read on the CPU before they move to a GPU.
    memory.require(weights + RUNTIME_BYTES + gguf_bytes, "cpu", what, smaller)
    if device != "cpu":
        memory.require(weights + RUNTIME_BYTES, device, what, smaller)


#: Bytes of activations one batch of work is planned around. A constant, not a share of the free
#: memory: the shape of every pass is then set by the model and the settings alone, so that the
#: same run gives the same numbers on a busy machine and an idle one (in bf16 a batch's scores
#: depend on what it is padded to). Where memory is short, a run is refused up front
#: (:mod:`culturetune.tuning.limits`, :func:`require`), never reshaped.
BATCH_BYTES = 2 * memory.GIB


def rows_within(per_row: int, most: int, budget: int = BATCH_BYTES) -> int:
    """How many rows of ``per_row`` bytes a batch of :data:`BATCH_BYTES` holds (at least 1, at
    most ``most``): fixed by the model and the settings, whatever memory is free."""
    if per_row <= 0:
        return most
    return int(max(1, min(most, budget // per_row)))
