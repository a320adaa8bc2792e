"""A tuning run's validity on a terminal: does the alignment hold on views it was not tuned on?

The table of views, the option-mass line and the verdict in plain words, printed after the
tuned indices by :func:`culturetune.report.console.print_tune_result`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from culturetune.report.terminal import TABLE_STYLE, num, say

#: A tuned prompt whose option mass falls below this share of the plain model's is flagged.
LOW_MASS_SHARE = 0.5


def low_mass_note(plain: float, tuned: float, folder: Any) -> str:
    """Says that a tuned model's answers are read from a small remainder of its distribution."""
    return (f"with the prompt the model puts {tuned:.1%} of its next-token probability on the "
            f"answer options (plain {plain:.1%}): it would mostly not answer with an option, and "
            "the indices are read from what is left; `culturetune survey --prompt "
            f"{folder}` shows each item's mass and the reply it generates")


def validity_table(validity: Any) -> tuple[Table, list[str]]:
    """The validity table and its legend. Each row is one view under a short name (at most
    :data:`LABEL_WIDTH` characters), so that the table fits 80 columns with no cell wrapped; the
    legend under it gives each short name's view in full (the training objective, the wording,
    the option orders, the reading, the format)."""
    table = Table(title="Does it hold? Loss on views the prompt was not tuned on",
                  title_justify="left", **TABLE_STYLE)
    for col in ("view", "plain", "uniform", "tuned", "gain kept", "answered"):
        table.add_column(col, justify="left" if col == "view" else "right", no_wrap=True,
                         overflow="ellipsis", max_width=LABEL_WIDTH if col == "view" else None)
    legend = []
    for row, label in zip([validity.training, *validity.checks], view_labels(validity),
                          strict=True):
        kept = "—" if row.kept is None else f"{100 * row.kept:.0f} %"
        answered = ("" if row.tuned_answered is None else
                    f"{row.plain_answered:.0%} → {row.tuned_answered:.0%}")
        table.add_row(label, num(row.plain, ".2f"), f"{row.uniform:.2f}",
                      num(row.tuned, ".2f"), kept if row.role != "training" else "", answered)
        counted = "" if getattr(row, "counted", True) else (
            " (shown, not counted: the model check says it does not answer by content in "
            "this format)")
        legend.append(f"{label}: {row.view}{counted}")
    return table, legend


def view_labels(validity: Any) -> list[str]:
    """The short name of each row (the training view, then each check): its role's name,
    numbered where a role has several views (``other wording 2``), ``FORMAT format`` for
    another answer format."""
    rows = [validity.training, *validity.checks]
    names = [f"{row.format} format" if row.role == "format" else ROLE_NAMES.get(row.role, row.role)
             for row in rows]
    out = []
    for i, name in enumerate(names):
        if names.count(name) > 1:
            name = f"{name} {names[:i].count(name) + 1}"
        out.append(name[:LABEL_WIDTH])
    return out


def print_validity(con: Console, validity: Any) -> None:
    """Does it hold? The training view and each check: plain, uniform, tuned, share kept; the
    views' short names explained under the table."""
    table, legend = validity_table(validity)
    con.print(table)
    say(con, "the views in full:")
    for line in legend:
        say(con, f"  {line}")
    unread = getattr(validity, "unread", None)
    if unread:
        said = "; ".join(f"{f}: {v}" for f, v in unread.items())
        say(con, f"not read in other answer formats where the model check says a reading "
            f"carries none of its answers ({said})")
    if validity.tuned_mass is not None:
        say(con, f"option mass: plain {validity.plain_mass:.3f} · tuned "
            f"{validity.tuned_mass:.3f} ({_pct(validity.mass_kept)} kept)")
    gain = validity.gain
    failed = f"; failed: {', '.join(validity.failed)}" if validity.failed else ""
    say(con, f"verdict: {validity.verdict.upper()} (training gain {num(gain, '.2f')}{failed})")
    say(con, f"rule: {validity.rule}")
    say(con, verdict_sentence(validity))


#: How the validity table names each role (its short names; the legend gives the views).
ROLE_NAMES = {"training": "tuned on", "wording": "other wording", "shown": "printed order",
              "reversed": "reversed order", "said": "said, both", "said shown": "said, printed",
              "said reversed": "said, reversed"}
#: The longest short name of a view (the table's first column).
LABEL_WIDTH = 17


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def verdict_sentence(validity: Any) -> str:
    """The verdict read plainly, in one sentence."""
    v = validity.verdict
    if v == "no gain":
        return "in plain words: tuning did not lower the loss by a point; nothing to check."
    if v == "held":
        return ("in plain words: the alignment held on every view checked, in what the model "
                "says too, and the model still answers with the options.")
    said = [c for c in validity.checks if c.reading == "said"]
    said_lost = [c for c in said if c.state != "held"]
    if said_lost and all(c.tuned == c.plain for c in said_lost):
        return ("in plain words: what the model says did not change; the gain lives in "
                "probability it does not say, so it is not an alignment of its answers.")
    if "option mass" in validity.failed:
        return ("in plain words: the prompt pushed probability off the answer options; the "
                "tuned indices are read from what is left, not from answers the model gives.")
    return ("in plain words: the gain does not carry over to every view checked (failed: "
            f"{', '.join(validity.failed)}); do not read the tuned indices as the model's values.")
