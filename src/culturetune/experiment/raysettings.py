"""Ray's settings and the checks before it starts: the address (with a TCP probe of a cluster's
port), CPU and memory amounts, worker threads and model arguments; Ray imported on demand, its
workers' errors sent to stderr.

Ray is imported only when a Ray executor is used (``pip install 'culturetune[ray]'``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from culturetune.core.errors import CultureTuneError
from culturetune.core.inputs import check_count

RAY_EXTRA = "pip install 'culturetune[ray]'"
_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$")


@dataclass
class RaySettings:
    """Where and how the Ray workers run, and the model each one loads (as ``load_model``)."""

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    threads: int | None = None
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False

    def validate(self) -> RaySettings:
        """Check every setting without Ray (errors name the command-line option)."""
        self.address = check_address(self.address)
        if self.workers is not None:
            self.workers = check_count(self.workers, "--workers", 1, 10_000)
        self.cpus_per_worker = _amount(self.cpus_per_worker, "--cpus-per-worker", 1024,
                                       positive=True)
        if self.gpus_per_worker is not None:
            self.gpus_per_worker = _amount(self.gpus_per_worker, "--gpus-per-worker", 64)
        if self.threads is not None:
            self.threads = check_count(self.threads, "--threads", 1, 4096)
        return self

    @property
    def worker_threads(self) -> int:
        """torch threads of each worker: ``--threads``, else its CPUs (at least 1)."""
        return self.threads or max(1, int(self.cpus_per_worker))

    def model_args(self) -> dict[str, Any]:
        return {"name": self.model, "device": self.device, "dtype": self.dtype,
                "trust_remote_code": self.trust_remote_code}


def _amount(value: Any, option: str, high: float, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CultureTuneError(f"{option} must be a number, got {value!r}") from None
    if not (x > 0 if positive else x >= 0) or x > high:
        low = "more than 0" if positive else "at least 0"
        raise CultureTuneError(f"{option} must be {low} and at most {high:g}, got {value!r}")
    return x


def check_address(address: str | None) -> str | None:
    """``--ray-address``: unset (start a local instance), ``auto`` (the running cluster on this
    machine), ``HOST:PORT`` or ``ray://HOST:PORT``."""
    if address is None:
        return None
    text = address.strip()
    if text.lower() == "auto":
        return "auto"
    m = _ADDRESS.match(text)
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise CultureTuneError(
            f"--ray-address takes auto, HOST:PORT or ray://HOST:PORT (the address `ray start "
            f"--head` prints), got {address[:80]!r}")
    return text


def check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """Refuse a ``HOST:PORT`` nothing answers on (``ray.init`` would wait for it forever)."""
    import socket

    m = _ADDRESS.match(address or "")
    if m is None:
        return
    host = m.group(2).strip("[]")
    try:
        socket.create_connection((host, int(m.group(3))), timeout=timeout).close()
    except OSError as exc:
        raise CultureTuneError(
            f"cannot reach Ray at {address} ({exc.strerror or type(exc).__name__}); is the "
            "cluster running (`ray start --head` prints its address)?") from None


def errors_to_stderr(ray: Any) -> None:
    """Ray prints its cluster's error messages ("A worker died ...") on the driver's stdout,
    which ``--json`` keeps for the result: send them to stderr (a private hook of Ray's;
    left alone where it is not there)."""
    mod = getattr(getattr(ray, "_private", None), "worker", None)
    show = getattr(mod, "print_to_stdstream", None)
    if show is None or getattr(show, "culturetune", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        show({**data, "is_err": True}, ignore_prefix)

    to_stderr.culturetune = True  # type: ignore[attr-defined]
    mod.print_to_stdstream = to_stderr


def require_ray() -> Any:
    """The ``ray`` module, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise CultureTuneError(
            f"Ray is not installed: running on Ray needs the ray extra ({RAY_EXTRA})") from None
    return ray
