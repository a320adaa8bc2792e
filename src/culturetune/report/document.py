"""The experiment report as a document: a list of blocks (headings, paragraphs, lists, tables,
images) rendered once as Markdown and once as standalone HTML, so both hold the same content;
reading ``results.json`` and writing the report with its figures.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_json, write_text
from culturetune.experiment.methods import FORMAT
from culturetune.reading.validity import HELD_SHARE, MIN_GAIN
from culturetune.report.figures import make_figures
from culturetune.report.sentences import validity_statement
from culturetune.report.tables import (
    Table,
    accuracy_summary_table,
    accuracy_table,
    cells_of,
    countries,
    headline,
    held_out,
    indices_table,
    loss_table,
    method_table,
    methods,
    tuned_methods,
    validity_table,
    verdict_table,
    view_label,
)

# --------------------------------------------------------------------------- document


Block = tuple  # ("h", level, text) | ("p", text) | ("list", [text]) | ("table", Table)
# | ("img", path, alt)


def _intro(results: dict[str, Any]) -> list[Block]:
    cfg, mach = results["config"], results.get("machine", {})
    cs = ", ".join(c["name"] for c in countries(results))
    bench = results.get("bench", {})
    versions = ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
    where = mach.get("gpu") or mach.get("cpu") or "unknown"
    bench_orders = (f", option orders {bench['orders']} averaged" if bench.get("orders")
                    else "")
    return [
        ("h", 1, f"Cultural alignment experiment: {results['model']}"),
        *_model_check(results),
        (
            "p",
            f"Countries: {cs}. Methods: {', '.join(methods(results))}. Tuned methods: "
            f"{cfg['seeds']} seed(s), {cfg['budget']} evaluations per run (population "
            f"{cfg['population']}, {cfg['tokens']} virtual tokens placed at the "
            f"{cfg['placement']}, subspace {cfg['subspace'] or 'full'}); a method named by its "
            f"optimizer alone is tuned on option orders {cfg.get('orders', 'shown')}"
            + (" with calibration" if cfg.get("calibrate") else "") + ".",
        ),
        (
            "list",
            [
                f"Machine: {where}, {mach.get('cores')} cores, {mach.get('torch_threads')} torch "
                f"threads, device {mach.get('device')}, {mach.get('dtype')}.",
                f"Versions: {versions}.",
                f"CulturalBench: {bench.get('source') or 'not run'} ({bench.get('split')}, "
                f"{bench.get('scoring')} scoring{bench_orders}, "
                + (f"at most {bench['limit']}" if bench.get("limit") else "all")
                + " questions per country).",
                f"Created {results.get('created')}; {len(results['cells'])} cells, "
                f"{results.get('reused_cells', 0)} reused from an earlier run; this run took "
                f"{results.get('seconds', 0) / 60:.1f} min.",
            ],
        ),
        (
            "p",
            "Loss: mean absolute difference between the model's six indices and the country's "
            "scores (lower is better); uniform: the loss of answering every item uniformly "
            "(every index = C), which any reading has to beat to say something. Every cell is "
            "read in the same views: the official items in the printed order, the reversed "
            "order, both averaged (the headline) and all five cyclic orders averaged, and the "
            "paraphrased items (written for culturetune, NOT the official VSM 2013), which no "
            "method is tuned on. Orders are averaged after mapping each answer back to option "
            "order. Tuned methods show mean ± sd over seeds. Indices marked * in a target row "
            "are estimates, not measured scores.",
        ),
    ]


def _model_check(results: dict[str, Any]) -> list[Block]:
    """The model check first: can this model answer the survey by content at all?"""
    check = results.get("model_check")
    if not check:
        return []
    from culturetune.reading.check import ModelCheck

    c = ModelCheck.from_dict(check)
    text = f"Model check ({c.instrument}): {c.summary()}."
    if c.warning():
        text += (" This model does not answer by content: any gain below measures the answer "
                 "format, not values.")
    return [("p", text)]


def _section(title: str, text: str, table: Table) -> list[Block]:
    return [("h", 2, title), ("p", text), ("table", table)]


def _overview(results: dict[str, Any], figures: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = _section(
        f"Loss per method: {view_label(headline(results))}",
        "The headline reading: the official items, answers averaged over the printed and the "
        "reversed option order.", loss_table(results))
    para = held_out(results)
    if any(para in c.get("views", {}) for c in results["cells"]):
        blocks += _section(
            f"Loss per method: {view_label(para)} (held out)",
            "The same, on paraphrased items: a wording no method was tuned on.",
            loss_table(results, para))
    if figures.get("loss"):
        blocks.append(("img", figures["loss"], "Loss per method and country"))
    if tuned_methods(results):
        blocks += _section(
            "Methods compared",
            "Over all countries and seeds: the view each method was tuned on, its loss there "
            "and its gain over the plain model; its loss on the official items read "
            "order-balanced and on the paraphrase (never tuned on); the share of the training "
            "gain kept on the paraphrase; the CulturalBench change against the plain model; "
            "time per tuning run.",
            method_table(results),
        )
        if figures.get("convergence"):
            blocks.append(("img", figures["convergence"], "Best loss against evaluations"))
        blocks += _section(
            "Validity at a glance",
            "Verdict per method and country, with the share of the training gain kept on each "
            "check: the other wordings / the printed order alone / the reversed order alone / "
            "what the model says in both orders / in the printed / in the reversed order (views "
            "equal to the one tuned on are left out). Held needs every check to keep half the "
            "gain and the option mass to stay at half the plain model's; details in the "
            "validity section below.",
            verdict_table(results),
        )
    acc = accuracy_summary_table(results)
    if acc.rows:
        blocks += _section(
            "CulturalBench accuracy at a glance",
            "Letter scoring with the options asked in every cyclic order and averaged, so that "
            "a preference for one letter cannot score. Plain model with its 95 % Wilson "
            "interval; other methods: mean ± sd over seeds, with the number of runs whose exact "
            "McNemar test against the plain model gives p < 0.05. Per-seed numbers are in the "
            "country sections.",
            acc,
        )
    return blocks


def _country_blocks(
    results: dict[str, Any], country: dict[str, Any], figures: dict[str, Any]
) -> list[Block]:
    blocks: list[Block] = [
        ("h", 3, f"{country['name']} ({country['code']})"),
        ("p", f"Indices on the headline view ({view_label(headline(results))})."),
        ("table", indices_table(results, country)),
    ]
    radar = figures.get("radar", {}).get(country["code"])
    if radar:
        blocks.append(("img", radar, f"{country['name']}: radar chart of the six indices"))
    if country.get("n_questions"):
        blocks += [
            (
                "p",
                f"CulturalBench accuracy on {country['n_questions']} questions: 95 % Wilson "
                "intervals; p: exact McNemar test against the plain model on the same questions "
                "(b = plain right and method wrong, c = the reverse).",
            ),
            ("table", accuracy_table(results, country)),
        ]
    else:
        note = country.get("bench_note") or "no CulturalBench questions"
        blocks.append(("p", f"CulturalBench accuracy: not available ({note})."))
    return blocks


def _validity_blocks(results: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [
        ("h", 2, "Validity: does the alignment survive views it was not tuned on?"),
        (
            "p",
            "Each prompt is scored on the view it was tuned on and on checks it never saw: the "
            "paraphrased items (written for culturetune; NOT the official VSM 2013 instrument), "
            "read in the same option orders, and the official items in the printed order alone "
            "and in the reversed order alone. Gain kept: the plain model's loss minus the "
            "prompt's on the check, divided by the same difference on the view it was tuned on. "
            f"Verdict: held when every check keeps at least {100 * HELD_SHARE:.0f} %; collapsed "
            "when a check keeps nothing; partly held otherwise. A method less than "
            f"{MIN_GAIN:g} point below the plain model's loss where it was tuned has no gain to "
            "check.",
        ),
    ]
    for country in countries(results):
        statements = [
            validity_statement(results, country, m)
            for m in methods(results)
            if m != "plain" and cells_of(results, country["code"], m)
        ]
        blocks += [
            ("h", 3, country["name"]),
            ("table", validity_table(results, country)),
            ("list", statements),
        ]
    return blocks


def report_blocks(results: dict[str, Any], figures: dict[str, Any]) -> list[Block]:
    """The whole report as blocks (rendered by :func:`to_markdown` and :func:`to_html`)."""
    blocks = _intro(results) + _overview(results, figures)
    blocks.append(("h", 2, "Countries"))
    for country in countries(results):
        blocks += _country_blocks(results, country, figures)
    return blocks + _validity_blocks(results)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _render(blocks: Sequence[Block], render: dict[str, Callable[..., str]]) -> list[str]:
    """Each block through the renderer of its kind (kinds without one are skipped)."""
    return [render[block[0]](*block[1:]) for block in blocks if block[0] in render]


def _md_table(t: Table) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in t.headers) + " |"]
    lines.append("|" + "|".join("---" for _ in t.headers) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def to_markdown(blocks: Sequence[Block]) -> str:
    out = _render(blocks, {
        "h": lambda level, text: f"{'#' * level} {text}",
        "p": lambda text: text,
        "list": lambda items: "\n".join(f"- {item}" for item in items),
        "table": _md_table,
        "img": lambda src, alt: f"![{alt}]({src})",
    })
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}"""


def _html_table(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in t.headers)
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def to_html(blocks: Sequence[Block], title: str = "culturetune experiment") -> str:
    e = html.escape
    body = _render(blocks, {
        "h": lambda level, text: f"<h{level}>{e(text)}</h{level}>",
        "p": lambda text: f"<p>{e(text)}</p>",
        "list": lambda items: "<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>",
        "table": _html_table,
        "img": lambda src, alt: f'<p><img src="{e(src)}" alt="{e(alt)}"></p>',
    })
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


RESULTS_KEYS = ("config", "model", "countries", "methods", "cells")


def load_results(folder: str | Path) -> dict[str, Any]:
    """Read ``results.json`` from an experiment folder (or the file itself), checking its shape."""
    path = Path(folder)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise CultureTuneError(
            f"{path} does not exist: run `culturetune experiment --out FOLDER` first"
        )
    results = read_json(path)
    family = FORMAT.split("/")[0] + "/"
    missing = [k for k in RESULTS_KEYS if not isinstance(results, dict) or k not in results]
    if missing or not str(results.get("format", "")).startswith(family):
        raise CultureTuneError(
            f"{path} is not a culturetune experiment's results.json "
            f"(missing: {', '.join(missing) or 'format'})"
        )
    if results["format"] != FORMAT:
        raise CultureTuneError(
            f"{path} was written by an older culturetune ({results['format']}; this one reads "
            f"{FORMAT}): its report.md is as that version wrote it; run the experiment again "
            "into a new folder for the current views and checks"
        )
    return results


def write_report(results: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write figures, ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    figures = make_figures(results, out)
    blocks = report_blocks(results, figures)
    write_text(out / "report.md", to_markdown(blocks))
    write_text(out / "report.html", to_html(blocks, f"culturetune experiment: {results['model']}"))
    return {"markdown": out / "report.md", "html": out / "report.html", "figures": figures}
