"""Atomic file writes and JSON helpers shared by every stage that saves results.

Every file culturetune writes goes through :func:`atomic_path`: it is written beside its place
under a temporary name and renamed over it only when complete, so that a failure (a full disk, a
quota, a read-only folder) leaves the old file or none, never half of one. Such a failure is a
:class:`WriteError` that names the file and the cause. Files get the mode ``0o666`` less the
umask, like any other tool's output.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from culturetune.core.errors import CultureTuneError

#: What an operating-system error number means for a file being written.
CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is reached",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "the folder is not writable (permission denied)",
    errno.EPERM: "the folder is not writable (operation not permitted)",
    errno.EFBIG: "the file is larger than this system allows",
}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust writers (safetensors) report errno


class WriteError(CultureTuneError):
    """A file could not be written; the message names it, the cause and what to do."""

    def __init__(self, path: str | Path, cause: str, code: int | None = None,
                 then: str = "run the command again") -> None:
        self.path, self.cause, self.code, self.next = Path(path), cause, code, then
        remedy = ("free some space" if code in _NO_SPACE else
                  "make the folder writable" if code in CAUSES else "check the disk")
        super().__init__(f"cannot write {self.path}: {cause}; {remedy}, then {then}")

    def then(self, then: str) -> WriteError:
        """The same failure, saying what to run once it is fixed."""
        return WriteError(self.path, self.cause, self.code, then)

    def moved(self, scratch: Path, out: Path) -> WriteError:
        """The same failure for a file written in ``scratch`` on its way to ``out``."""
        try:
            path = out / self.path.relative_to(scratch)
        except ValueError:
            path = self.path
        return WriteError(path, self.cause, self.code, self.next)


def error_code(exc: BaseException) -> int | None:
    """The operating-system error number behind ``exc`` (an ``OSError``, or a writer's error
    whose text ends in ``(os error N)``), else ``None``."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = _OS_ERROR.search(str(exc))
    return int(found.group(1)) if found else None


def os_cause(exc: BaseException) -> str:
    """``exc`` in words: "the disk is full (No space left on device)"."""
    code = error_code(exc)
    if code is None:
        text = getattr(exc, "strerror", None) or str(exc).strip()
        return text.splitlines()[0][:300] if text else type(exc).__name__
    text = os.strerror(code)
    return f"{CAUSES[code]} ({text})" if code in CAUSES else text


def write_failure(path: str | Path, exc: BaseException) -> WriteError | None:
    """``exc``, raised while writing ``path``, as a :class:`WriteError`; ``None`` when it is not
    a failure to write (a bug, an interrupt, a user error)."""
    if isinstance(exc, CultureTuneError) or not isinstance(exc, Exception):
        return None
    if not isinstance(exc, OSError) and error_code(exc) is None:
        return None
    return WriteError(path, os_cause(exc), error_code(exc))


def umask() -> int:
    """The process's umask: read from ``/proc`` where the system tells it, else set and put back
    at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """The mode a new file gets: ``0o666`` less the umask (0o644 under 022, 0o664 under 002)."""
    return 0o666 & ~umask()


def set_mode(path: str | Path) -> None:
    """Give ``path`` the mode of a new file (file systems that refuse ``chmod`` are left be)."""
    try:
        os.chmod(path, file_mode())
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary path beside ``path`` that replaces it only if the block succeeds.

    The file gets :func:`file_mode`; a failure to write (from the block or the rename) is a
    :class:`WriteError` naming ``path``, and the temporary file is removed."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        yield tmp
        set_mode(tmp)
        os.replace(tmp, path)
        tmp = None
    except Exception as exc:
        failure = write_failure(path, exc)
        if failure is None:
            raise
        raise failure from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_files(writers: Sequence[tuple[str | Path, Callable[[str], None]]]) -> None:
    """Write several files atomically, each by ``write(temporary path)``: none replaces its file
    unless all were written, and the first is put in place last (so that it marks a complete
    set)."""
    with ExitStack() as stack:
        for path, write in writers:
            tmp = stack.enter_context(atomic_path(path))
            try:
                write(tmp)
            except Exception as exc:
                failure = write_failure(path, exc)
                if failure is None:
                    raise
                raise failure from exc


def temp_folder(parent: str | Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` (made if needed) with the umask's mode; a failure is a
    :class:`WriteError`."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            path = parent / f"{prefix}{secrets.token_hex(4)}"
            try:
                path.mkdir(mode=0o777)
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise WriteError(parent, os_cause(exc), error_code(exc)) from exc


def read_text(path: str | Path, what: str) -> str:
    """A user's text file (see ``inputs.read_user_text``); ``what`` names it in the error, e.g.
    "config file"."""
    from culturetune.core.inputs import read_user_text

    return read_user_text(path, what)


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """Read JSON, turning a missing or broken file into a clear error."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or encoding
        raise CultureTuneError(f"{path} is not readable JSON ({exc})") from None
