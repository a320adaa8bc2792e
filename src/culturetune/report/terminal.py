"""What every terminal printer shares: the console, plain lines, the table style, numbers."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.text import Text

MISSING = "—"
TABLE_STYLE: dict[str, Any] = {
    "box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True, "show_edge": False
}


def stdout() -> Console:
    """Console for results (stdout); created per call so redirected streams are honoured."""
    return Console(highlight=False)


def say(console: Console, text: str) -> None:
    """One line of plain text (never read as markup; long lines are not hard-wrapped)."""
    console.print(Text(text), soft_wrap=True)


def num(x: float | None, fmt: str = "g") -> str:
    """``x`` formatted with ``fmt``; the missing mark for None."""
    if x is None:
        return MISSING
    return format(x, fmt)
