"""The ``culturetune`` application: the typer app, how commands are registered, and the entry
point that turns every failure a user can cause into one line ``error: ...`` and an exit status.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from culturetune.core.errors import CultureTuneError, Interrupted
from culturetune.core.version import __version__

app = typer.Typer(
    name="culturetune",
    help="Align a frozen language model with a country's culture: VSM 2013 survey, "
    "soft-prompt tuning, CulturalBench.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def interruptible(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C inside a command: ``error: interrupted`` and exit status 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None

    return wrapper


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``app.command`` for culturetune: registers the function wrapped by ``interruptible``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        app.command(*args, **kwargs)(interruptible(fn))
        return fn

    return register


def _version(value: bool) -> None:
    if value:
        print(f"culturetune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Survey a language model with the VSM 2013 and score it on Hofstede's six dimensions."""


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app and turn every failure a user can cause into one line
    ``error: <message>`` on stderr with exit status 2, never a traceback: a
    ``CultureTuneError``, a usage error, an operating-system error (a full disk, a folder that
    cannot be written), running out of memory. Ctrl-C exits with 130 (SIGTERM and SIGHUP with
    143 and 129), after the command has saved what it can."""
    received: list[int] = []
    restore = _trap_signals(received)
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="culturetune",
                   standalone_mode=False)
    except _CLICK_ERRORS as exc:  # usage errors
        ctx, message = getattr(exc, "ctx", None), exc.format_message()
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        code = _fail(f"{message}{hint}", exc.exit_code) if message else exc.exit_code
    except _ABORTS:
        code = _fail("interrupted", 130)
    except CultureTuneError as exc:
        code = _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:  # outside a command (commands handle their own)
        code = _fail("interrupted", 130)
    except OSError as exc:
        code = _fail(_os_error(exc), 2)
    except MemoryError:
        code = _fail("out of memory; use smaller settings (--population, --tokens, --subspace)", 2)
    except RuntimeError as exc:
        if not _out_of_memory(exc):
            raise
        code = _fail(f"out of memory ({_first_line(exc)}); use smaller settings (--population, "
                     "--tokens, --subspace) or another --device", 2)
    finally:
        restore()
    if code == 130 and received:
        code = 128 + received[0]
    sys.exit(code or 0)


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from the click that typer uses (typer >= 0.2x vendors its own) and from click."""
    found = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(__import__(module, fromlist=[name]), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_CLICK_ERRORS = _click_classes("ClickException")
_ABORTS = _click_classes("Abort")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _os_error(exc: OSError) -> str:
    from culturetune.core.files import os_cause

    where = f": {exc.filename}" if exc.filename else ""
    return f"{os_cause(exc)}{where}"


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text or (
        "can't allocate memory" in text)


def _trap_signals(received: list[int]) -> Callable[[], None]:
    """SIGTERM and SIGHUP stop a command the way Ctrl-C does (work is saved, the exit status
    says which signal it was); returns a function that puts the old handlers back."""

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    old: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                old[sig] = signal.signal(sig, stop)
    except ValueError:  # not the main thread: leave the signals alone
        pass

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore
