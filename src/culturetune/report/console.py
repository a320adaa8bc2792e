"""Results on a terminal: the rich tables and plain lines the command line prints (the survey
table, the indices table and loss lines, human scores, the country table, a tuning run's result
and validity, CulturalBench tables and progress). Every function takes a finished result object;
none computes anything. Torch-free.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from culturetune.core.progress import Heartbeat
from culturetune.instrument.items import DIMENSION_NAMES
from culturetune.instrument.targets import TABLE_SOURCE, Loss, Target
from culturetune.instrument.vsm import DIMENSIONS
from culturetune.report.terminal import MISSING, TABLE_STYLE, num, say, stdout
from culturetune.report.verdicts import LOW_MASS_SHARE, low_mass_note, print_validity

if TYPE_CHECKING:
    from culturetune.instrument.vsm import ResponseScore
    from culturetune.reading.administer import SurveyResult

#: Up to this many orders the survey table shows each order's item mean in its own column.
ORDER_COLUMNS = 5


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- indices and loss


def describe_constants(constants: Mapping[str, float]) -> str:
    """``"C = 50"`` when all indices share a constant, else ``"C: PDI=0, IDV=50, ..."``."""
    values = set(constants.values())
    if len(values) == 1:
        return f"C = {num(values.pop())}"
    return "C: " + ", ".join(f"{d}={num(constants[d])}" for d in DIMENSIONS)


def describe_target(target: Target) -> str:
    code = f" ({target.code})" if target.code else ""
    est = f"; estimated: {', '.join(target.estimated)}" if target.estimated else ""
    return f"{target.name}{code}{est}"


def indices_table(
    indices: Mapping[str, float | None],
    constants: Mapping[str, float],
    target: Target | None = None,
    loss: Loss | None = None,
) -> Table:
    """The six indices, and with a target its scores and the gaps (index - target)."""
    table = Table(
        title=f"Indices ({describe_constants(constants)})", title_justify="left", **TABLE_STYLE
    )
    table.add_column("dim")
    table.add_column("dimension")
    table.add_column("index", justify="right")
    if target is not None:
        table.add_column("target", justify="right")
        table.add_column("gap", justify="right")
    for d in DIMENSIONS:
        row = [d, DIMENSION_NAMES[d], num(indices.get(d), ".1f")]
        if target is not None:
            t = target.scores.get(d)
            mark = "*" if d in target.estimated else ""
            row.append(MISSING if t is None else f"{t:g}{mark}")
            gap = loss.gaps.get(d) if loss is not None else None
            row.append(MISSING if gap is None else f"{gap:+.1f}")
        table.add_row(*row)
    return table


def print_loss(
    console: Console, target: Target, loss: Loss | None, uniform: Loss | None = None
) -> None:
    """The loss line: value, kind and the dimensions it used, and the uniform baseline."""
    if loss is None:
        return
    what = "mean |gap|" if loss.kind == "l1" else "root mean square gap"
    say(
        console,
        f"loss ({loss.kind}, {what}) vs {describe_target(target)}: {loss.value:.2f} "
        f"over {', '.join(loss.dimensions)}",
    )
    if uniform is not None:
        diff = loss.value - uniform.value
        where = "below" if diff < 0 else "above" if diff > 0 else "equal to"
        say(console, f"uniform answers (every index = C) would score {uniform.value:.2f}; this "
            f"loss is {abs(diff):.2f} {where} it")
    unused = [d for d in DIMENSIONS if d not in loss.dimensions]
    if unused:
        say(console, f"not used (no target score): {', '.join(unused)}")
    if target.estimated:
        say(console, "* estimate, not a measured score")



# --------------------------------------------------------------------------- survey



def _order_label(order: Sequence[int]) -> str:
    """``"12345"`` for the printed order, ``"54321"`` reversed: option numbers as shown."""
    return "".join(str(i + 1) for i in order)


def describe_orders(result: SurveyResult) -> str:
    n = len(result.order_list)
    shown = ", ".join(_order_label(o) for o in result.order_list[:ORDER_COLUMNS])
    more = "" if n <= ORDER_COLUMNS else f", … ({n} orders)"
    avg = "" if n == 1 else "; answers mapped back to option order and averaged"
    cal = "; calibrated with content-free items" if result.calibrated else ""
    return f"orders {result.orders} ({shown}{more}{avg}){cal}"


def print_survey(result: SurveyResult, persona: str | None = None) -> None:
    """Human-readable survey result: header, per-item answers, indices, loss and notes."""
    con = stdout()
    prompt = f" · prompt {result.prompt}" if result.prompt else ""
    say(
        con,
        f"model {result.model} · instrument {result.instrument} · answers {result.answers} "
        f"· {describe_orders(result)}{prompt}",
    )
    if result.system:
        who = f"persona {persona}: " if persona else "system: "
        say(con, who + result.system)
    generated = result.answers in ("generate", "said")
    n_orders = len(result.order_list)
    per_order = 1 < n_orders <= ORDER_COLUMNS
    # On narrow consoles the question column takes what the numbers leave (cut with "…").
    title = "Answers: option probabilities (renormalised over 1-5, option order), mean"
    if n_orders > 1:
        title += (", mean in each order (shown as the option numbers in the order listed)"
                  if per_order else ", lowest-highest mean over the orders")
    table = Table(
        title=title + ", raw option mass",
        title_justify="left",
        expand=con.width <= 120,
        **TABLE_STYLE,
    )
    table.add_column("item", no_wrap=True)
    table.add_column("question", no_wrap=True, overflow="ellipsis", ratio=1, max_width=60)
    for k in range(1, 6):
        table.add_column(str(k), justify="right", no_wrap=True, min_width=4)
    table.add_column("mean", justify="right", no_wrap=True, min_width=4)
    if per_order:
        for o in result.order_list:
            table.add_column(_order_label(o), justify="right", no_wrap=True)
    elif n_orders > 1:
        table.add_column("range", justify="right", no_wrap=True)
    table.add_column("mass", justify="right", no_wrap=True)
    if generated:
        table.add_column("answer", no_wrap=True, overflow="ellipsis", min_width=10, max_width=16)
    for it in result.items:
        row: list[str | Text] = [it.var, Text(_short(it.text, 200))]
        row += [f"{p:.2f}" for p in it.probs]
        row.append(num(it.mean, ".2f"))
        if per_order:
            row += [num(m, ".2f") for m in it.order_means]
        elif n_orders > 1:
            got = [m for m in it.order_means if m is not None]
            row.append(f"{min(got):.2f}-{max(got):.2f}" if got else MISSING)
        row.append(f"{it.mass:.2f}")
        if generated:
            row.append(Text(" | ".join("·" if g is None else repr(g)[1:-1]
                                       for g in it.generated_by_order or [])))
        table.add_row(*row)
    con.print(table)
    if result.answered is not None:
        say(con, f"replies naming an option: {result.answered:.0%} of items x orders"
            + (" (· = the greedy reply spelled an option; no reply generated)"
               if result.answers == "said" else ""))
    if result.missing == "neutral":
        say(con, "probability off the options counts as the middle answer (--missing neutral)")
    say(con, f"option mass (mean over items): {result.option_mass:.3f}")
    con.print(indices_table(result.indices, result.constants, result.target, result.loss))
    if result.target is not None:
        print_loss(con, result.target, result.loss, result.uniform_loss)
    for note in result.notes:
        say(con, f"note: {note}")


# --------------------------------------------------------------------------- human scores


def print_score(
    source: str, result: ResponseScore, target: Target | None, loss: Loss | None
) -> None:
    """Human VSM 2013 answers scored: respondents, item means, indices, and the loss line."""
    con = stdout()
    say(con, f"{source}: respondents {result.n_respondents}")
    table = Table(title="Item means", title_justify="left", **TABLE_STYLE)
    table.add_column("item")
    table.add_column("mean", justify="right")
    table.add_column("n", justify="right")
    for var, mean in result.means.items():
        table.add_row(var, f"{mean:.2f}", str(result.counts[var]))
    con.print(table)
    con.print(indices_table(result.indices, result.constants, target, loss))
    if target is not None:
        print_loss(con, target, loss)


# --------------------------------------------------------------------------- countries


def print_countries(rows: Sequence[Target], one: bool = False) -> None:
    """Hofstede's country scores as a table (estimates marked *), with sources and notes;
    ``one``: a single country was asked for."""
    con = stdout()
    table = Table(title="Hofstede's country scores", title_justify="left", **TABLE_STYLE)
    table.add_column("code")
    table.add_column("country")
    for d in DIMENSIONS:
        table.add_column(d, justify="right")
    for t in rows:
        cells = [
            MISSING if t.scores[d] is None else f"{t.scores[d]:g}{'*' if d in t.estimated else ''}"
            for d in DIMENSIONS
        ]
        table.add_row(t.code or "", Text(t.name), *cells)
    con.print(table)
    if one:
        say(con, f"source: {rows[0].source}")
        if rows[0].estimated:
            say(con, f"* estimate, not a measured score: {', '.join(rows[0].estimated)}")
        return
    say(con, f"{len(rows)} countries and regions; {MISSING} = not measured")
    for t in rows:
        if t.estimated:
            say(
                con,
                f"* estimate, not in the 2015 research table: {t.name} "
                f"{', '.join(t.estimated)} (source: culturetune countries {t.code})",
            )
    say(con, f"source: {TABLE_SOURCE}")


# --------------------------------------------------------------------------- model check


#: The model check's verdicts as the table's column shows them (the full words follow it).
_SHORT_VERDICTS = {"answers by content": "BY CONTENT", "ignores the items": "item-blind",
                   "answers by position": "by position",
                   "does not follow instructions": "ignores asks", "answers inconsistently":
                   "inconsistent", "does not answer": "no answer"}


def print_model_check(checks: Any) -> None:
    """The model check in each answer format: one table (a row per format), what the model said
    in each, and the format in which it answers by content, if any. ``checks``: a
    ``{format: ModelCheck}`` mapping or one ``ModelCheck``."""
    from culturetune.reading.check import (
        MIN_AGREEMENT,
        MIN_CONTENT_FREE_DIFFERENCE,
        MIN_ITEM_VARIATION,
        MIN_PROBE_GAP,
        closest_format,
        content_format,
    )

    if not isinstance(checks, dict):
        checks = {checks.format: checks}
    con = stdout()
    first = next(iter(checks.values()))
    seconds = sum(c.seconds for c in checks.values())
    say(con, f"model {first.model} · instrument {first.instrument} · {first.items} items · "
        f"{seconds:.0f} s")
    table = Table(title="Does the model answer by content? (what it says)", title_justify="left",
                  **TABLE_STYLE)
    columns = ("format", "content", "pos", "gap", "p1", "p2", "vary", "free", "top",
               "said", "verdict")
    for col in columns:
        table.add_column(col, justify="left" if col in ("format", "verdict") else "right",
                         no_wrap=True)
    for fmt, c in checks.items():
        probe = [f"{p['gap']:+.2f}" for p in c.probe.values()]
        items = ["-" if v is None else f"{v:.0%}"
                 for v in (c.item_variation, c.content_free_difference)]
        table.add_row(fmt, f"{c.content_agreement:.0%}", f"{c.position_agreement:.0%}",
                      f"{c.order_gap:.2f}", *probe, *items, f"{c.top_option_match:.0%}",
                      f"{c.answered:.0%}", _SHORT_VERDICTS.get(c.verdict, c.verdict))
    con.print(table)
    say(con, f"content / pos: items with the same option content / the same shown position "
        f"printed and reversed (content needs >= {MIN_AGREEMENT:.0%}); gap: mean |printed - "
        f"reversed| (1-5 scale); p1 / p2: the instruction probe, how far asking for the "
        f"disagreeing pole moves the answers from asking for the agreeing pole, printed / "
        f"reversed order (needs >= "
        f"{MIN_PROBE_GAP:g} in each); vary: items (each order alone) that get another option "
        f"than the most common one (needs >= {MIN_ITEM_VARIATION:.0%}); free: items that get "
        f"another option than content-free items with the same options (needs >= "
        f"{MIN_CONTENT_FREE_DIFFERENCE:.0%}); top: items where the most likely option is "
        "the one the reply names; said: replies that name an option")
    for fmt, c in checks.items():
        probe = "; ".join(f"{name} {p['asked_high']:.2f} -> {p['asked_low']:.2f}"
                          for name, p in c.probe.items())
        say(con, f"probe, {fmt} (pole score asked to agree -> asked to disagree, 1 = the "
            f"agreeing pole): {probe}")
    for fmt, c in checks.items():
        for name, said in c.said.items():
            shown = " ".join("·" if v is None else str(v) for v in said)
            say(con, f"said, {fmt}, {name} (positions as shown, · none): {shown}")
        replies = [r for rs in c.replies.values() for r in rs if r]
        if replies:
            say(con, f"a reply generated where the greedy path left the options ({fmt}): "
                f"{replies[0]!r}")
    for fmt, c in checks.items():
        say(con, f"{fmt}: {c.verdict}")
    chosen = content_format(checks)
    if len(checks) == 1:
        say(con, f"verdict: {first.verdict.upper()} ({first.format} format)")
        warning = first.warning()
        if warning:
            say(con, f"note: {warning}")
    elif chosen:
        say(con, f"verdict: ANSWERS BY CONTENT in the {chosen} format (--format auto reads in "
            "it)")
    else:
        closest = closest_format(checks)
        say(con, f"verdict: answers by content in NO format (--format auto reads in {closest}, "
            "where it comes closest: the most items with the same option content in both "
            "orders, then the larger probe gap); any gain from tuning will measure the answer "
            "format, not values")


# --------------------------------------------------------------------------- tuning


def print_tune_result(result: Any) -> None:
    """The tuned indices beside plain and uniform, then the validity table and verdict."""
    con = stdout()
    cfg = result.config
    steps = len(result.history)
    say(con, f"{result.status}: {cfg.optimizer}, {result.evaluations:g} forward-equivalents "
        f"({steps} step{'s' if steps != 1 else ''}) in {result.seconds:.0f} s; prompt saved in "
        f"{result.folder}")
    wordings = ", ".join(w.rsplit("/", 1)[-1] for w in cfg.wordings)
    floor = "" if cfg.min_mass is None else f", option mass >= {cfg.min_mass:g} x plain"
    say(con, f"objective: {cfg.objective} {cfg.loss} loss on {wordings}, orders {cfg.orders}"
        f"{', calibrated' if cfg.calibrate else ''}, reading {cfg.reading} (missing mass: "
        f"{cfg.missing}){floor}; optimizer {cfg.optimizer}")
    if result.model_check is not None:
        say(con, f"model check: {result.model_check.verdict} ({cfg.format} format)")
    table = Table(title=f"Indices vs {describe_target(cfg.target)}",
                  title_justify="left", **TABLE_STYLE)
    for col in ("dim", "target", "plain", "uniform", "tuned"):
        table.add_column(col, justify="left" if col == "dim" else "right")
    for d in DIMENSIONS:
        t = cfg.target.scores.get(d)
        table.add_row(d, num(t), num(result.baseline.indices[d], ".1f"),
                      num(cfg.constants[d], ".1f"), num(result.final.indices[d], ".1f"))
    con.print(table)
    say(con, f"loss ({cfg.loss}): plain {result.baseline.loss.value:.2f} · uniform "
        f"{result.baseline.uniform_loss.value:.2f} · tuned {result.final.loss.value:.2f}")
    plain_mass, tuned_mass = result.baseline.option_mass, result.final.option_mass
    say(con, f"option mass (probability on the answer options, mean over items): plain "
        f"{plain_mass:.3f} · tuned {tuned_mass:.3f}")
    if tuned_mass < LOW_MASS_SHARE * plain_mass:
        say(con, f"note: {low_mass_note(plain_mass, tuned_mass, result.folder)}")
    print_validity(con, result.validity)
    if result.status == "time-limit":
        say(con, f"budget not reached; continue with: culturetune tune --resume {result.folder}")


# --------------------------------------------------------------------------- CulturalBench


def bench_progress(quiet: bool = False, every: float = 10.0) -> Callable[[str, int, int], None]:
    """A progress callback for CulturalBench: ``condition: done/total`` on stderr (nothing when
    ``quiet``). On a terminal one line is rewritten in place; to a file or a pipe, whole lines:
    each condition's first and last, and one at most every ``every`` seconds between."""
    lines: dict[str, Heartbeat] = {}

    def line(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def show(name: str, done: int, total: int) -> None:
        if quiet:
            return
        if sys.stderr.isatty():
            print(f"\r{name}: {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
            return
        first = name not in lines
        beat = lines.setdefault(name, Heartbeat(line, every, beat=False))
        beat.update(f"{name}: {done}/{total}", force=first or done >= total)

    return show


def print_bench(result: Any) -> None:
    """A :class:`~culturetune.culturalbench.BenchResult` as its readable tables."""
    from culturetune.culturalbench import format_tables

    say(stdout(), format_tables(result))


# --------------------------------------------------------------------------- known models


def _bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def print_models(report: Mapping[str, Any]) -> None:
    """``culturetune models``: per known model, what its GGUF file is, the packages that ship it,
    its size and the hash checked, licence, whether it is installed, its cached copies and its
    model-check verdicts per answer format."""
    con = stdout()
    for m in report["models"]:
        table = Table(title=f"{m['name']}: {m['display']}", title_justify="left",
                      show_header=False, **TABLE_STYLE)
        table.add_column("", style="bold")
        table.add_column("", overflow="fold")
        table.add_row("from", f"{m['hub_id']} ({m['licence']})")
        if m.get("origin"):
            table.add_row("file", m["origin"])
        table.add_row("packages", m["shipped"])
        table.add_row("size", f"{m['quantization']} GGUF {_bytes(m['gguf_bytes'])}, "
                              f"{m['parameters'] / 1e9:.2f} B weights")
        table.add_row("checked", m["checked"])
        if m["installed"]:
            table.add_row("installed", "yes")
        else:
            shown = "; ".join(m["problems"][:2]) + (
                f"; {len(m['problems']) - 2} more" if len(m["problems"]) > 2 else "")
            table.add_row("installed", f"no ({shown}): {m['install']}")
        cached = [f"{c['dtype']} {_bytes(c['bytes'])} {c['path']}" for c in m["cached"]]
        table.add_row("cached", "\n".join(cached) or "no (made on the first load)")
        checks = []
        for fmt, found in m["checks"].items():
            if found:
                where = ("" if found[0]["instrument"] == "vsm2013" else
                         f" ({found[0]['instrument']})")
                checks.append(f"{fmt}: {found[0]['verdict']}{where}")
            else:
                checks.append(f"{fmt}: {MISSING}")
        if not any(m["checks"].values()):
            checks.append(f"run {m['check_command']}")
        table.add_row("check-model", "\n".join(checks))
        con.print(table)
        say(con, "")
    say(con, f"cache: {report['cache']}")
