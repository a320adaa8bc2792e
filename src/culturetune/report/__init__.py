"""The experiment report, built from a ``results.json`` dict without the model.

* :mod:`~culturetune.report.tables`: the numbers (means over seeds, validity verdicts) and every
  table of the report as a :class:`Table` of strings.
* :mod:`~culturetune.report.sentences`: one plain sentence per (country, method) on whether
  the alignment held.
* :mod:`~culturetune.report.figures`: radar charts, convergence curves and loss bars (PNG).
* :mod:`~culturetune.report.document`: the report as blocks rendered once as Markdown and once
  as standalone HTML (same content); :func:`load_results` and :func:`write_report`.

Every public name is importable from here (``culturetune.report.write_report``).
"""

from culturetune.report.document import (
    Block,
    load_results,
    report_blocks,
    to_html,
    to_markdown,
    write_report,
)
from culturetune.report.figures import (
    convergence_figure,
    loss_bars_figure,
    make_figures,
    radar_figure,
)
from culturetune.report.sentences import validity_statement
from culturetune.report.tables import (
    MISSING,
    VIEW_LABELS,
    Table,
    accuracy_summary_table,
    accuracy_table,
    cells_of,
    countries,
    fmt_mean_sd,
    fmt_p,
    headline,
    indices_table,
    loss_table,
    mean_sd,
    method_table,
    methods,
    training_view,
    tuned_methods,
    validity,
    validity_table,
    verdict_table,
    view_label,
    view_loss,
)

__all__ = [
    "MISSING",
    "VIEW_LABELS",
    "Block",
    "Table",
    "accuracy_summary_table",
    "accuracy_table",
    "cells_of",
    "convergence_figure",
    "countries",
    "fmt_mean_sd",
    "fmt_p",
    "headline",
    "indices_table",
    "load_results",
    "loss_bars_figure",
    "loss_table",
    "make_figures",
    "mean_sd",
    "method_table",
    "methods",
    "radar_figure",
    "report_blocks",
    "to_html",
    "to_markdown",
    "training_view",
    "tuned_methods",
    "validity",
    "validity_statement",
    "validity_table",
    "verdict_table",
    "view_label",
    "view_loss",
    "write_report",
]
