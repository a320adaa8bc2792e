"""How much memory a device has free, and refusing work that would not fit. Torch-free (torch is
imported only to ask a GPU).

On the CPU the free memory is the system's ``MemAvailable`` (what can be allocated without
swapping: free pages and page cache that can be dropped), lowered to what a cgroup memory limit
leaves (a container, a systemd slice, a batch job) where one is set. ``CULTURETUNE_MEMORY_LIMIT``
overrides both, on every device: a number of bytes, or one with a unit (``8GiB``, ``512M``,
``1.5G``; units are powers of 1024). Tests use it to simulate a small machine; a user can use it
to lift a refusal where swap makes more room than the estimate sees.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from culturetune.core.errors import CultureTuneError

ENV = "CULTURETUNE_MEMORY_LIMIT"
GIB = 2**30
#: Where cgroup file systems are mounted (version 2 at the root, or version 1's ``memory``).
CGROUP_ROOT = Path("/sys/fs/cgroup")
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
#: cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything above this is
#: no limit.
_NO_LIMIT = 2**60


def parse_size(text: str, what: str = ENV) -> int:
    """``"8GiB"``, ``"512M"``, ``"1.5g"``, ``"1073741824"`` as bytes (units are powers of 1024)."""
    m = _SIZE.match(str(text))
    if not m:
        raise CultureTuneError(f"{what}={text!r} is not a size; give bytes or a number with a "
                               "unit, such as 8GiB or 512MiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def available_bytes(device: str) -> int | None:
    """Free memory on ``device`` (``None`` when unknown): ``CULTURETUNE_MEMORY_LIMIT`` where set,
    else a GPU's free memory, else the CPU's available memory within any cgroup limit."""
    override = os.environ.get(ENV, "").strip()
    if override:
        return parse_size(override)
    try:
        if device.startswith("cuda"):
            import torch

            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        free = _system_available()
        room = cgroup_room()
        if free is None:
            return room
        return free if room is None else min(free, room)
    except Exception:  # noqa: BLE001 - no estimate is better than a crash here
        return None


def _system_available() -> int | None:
    try:
        import psutil
    except ImportError:
        return _meminfo_available()
    return int(psutil.virtual_memory().available)


def _meminfo_available() -> int | None:
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def cgroup_room() -> int | None:
    """What this process's cgroup memory limit leaves (the limit less the memory in use, page
    cache that can be dropped not counted), the tightest over the cgroup and its parents;
    ``None`` where no limit is set or cgroups are not readable."""
    rooms = [limit - used for limit, used in _cgroup_limits() if limit < _NO_LIMIT]
    return max(0, min(rooms)) if rooms else None


def _cgroup_limits() -> list[tuple[int, int]]:
    """(limit, usage) of this process's memory cgroup and each of its parents."""
    out = []
    for version, rel in _cgroup_paths():
        base = CGROUP_ROOT if version == 2 else CGROUP_ROOT / "memory"
        parts = [p for p in rel.strip("/").split("/") if p]
        for depth in range(len(parts), -1, -1):
            found = _read_cgroup(base.joinpath(*parts[:depth]), version)
            if found is not None:
                out.append(found)
    return out


def _cgroup_paths() -> list[tuple[int, str]]:
    """(cgroup version, path) of this process's memory cgroup, from ``/proc/self/cgroup``."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    paths = []
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            paths.append((2, path))
        elif "memory" in controllers.split(","):
            paths.append((1, path))
    return paths


def _read_cgroup(folder: Path, version: int) -> tuple[int, int] | None:
    names = (("memory.max", "memory.current", "inactive_file") if version == 2 else
             ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
    try:
        raw = (folder / names[0]).read_text().strip()
        if raw == "max":
            return None
        limit, used = int(raw), int((folder / names[1]).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == names[2]:
                used -= int(value)
                break
    except (OSError, ValueError):
        pass
    return limit, max(used, 0)


def require(need: int, device: str, what: str, hint: str = "") -> None:
    """Refuse ``what`` where its ``need`` bytes exceed the free memory on ``device``: one error
    that says how much it needs, how much is free and what to do."""
    free = available_bytes(device)
    if free is None or need <= free:
        return
    where = "" if device == "cpu" else f" on {device}"
    raise CultureTuneError(
        f"{what} needs about {need / GIB:.1f} GiB of memory{where}, but only {free / GIB:.1f} "
        f"GiB are free{hint}; close other programs, or set {ENV} (e.g. 16GiB) if more is "
        "available")
