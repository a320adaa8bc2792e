"""The ``culturetune`` command line: a thin layer that parses options, calls the library and
prints a rich table (or JSON with ``--json``).

* :mod:`~culturetune.cli.app`: the typer app, command registration, the entry point
  :func:`main` (errors as one line ``error: ...``, exit statuses, signals).
* :mod:`~culturetune.cli.options`: the options several commands share (``ModelOpt``,
  ``JsonOpt``, ``TargetOpt``, ...) and the choices as enums.
* :mod:`~culturetune.cli.common`: what commands share around the library (``load_lm``,
  ``resolve_target``, ``system_prompt``, ``print_json``, ``status``).
* one module per group of commands, in the order ``--help`` lists them:
  :mod:`~culturetune.cli.survey` (``survey``, ``score``, ``countries``),
  :mod:`~culturetune.cli.check` (``check-model``), :mod:`~culturetune.cli.models`
  (``models``), :mod:`~culturetune.cli.tune`, :mod:`~culturetune.cli.chat`,
  :mod:`~culturetune.cli.bench`,
  :mod:`~culturetune.cli.experiment` (``experiment``, ``report``).

What the commands print is rendered by :mod:`culturetune.report.console`. Heavy imports (torch,
transformers) happen inside the commands that need a model, so ``countries`` and ``score`` start
fast. The console script is ``culturetune = "culturetune.cli:main"``; ``python -m
culturetune.cli`` runs the same.
"""

# The command modules register their commands on import, in this order (the order of --help).
from culturetune.cli import survey, check, models, tune, chat, bench, experiment  # noqa: I001, F401
from culturetune.cli.app import app, command, main
from culturetune.cli.common import (
    load_lm,
    print_json,
    quiet_transformers,
    resolve_target,
    status,
    system_prompt,
)
from culturetune.cli.options import ANSWER_MODES, DTYPES
from culturetune.report.console import print_survey

__all__ = [
    "ANSWER_MODES",
    "DTYPES",
    "app",
    "command",
    "load_lm",
    "main",
    "print_json",
    "print_survey",
    "quiet_transformers",
    "resolve_target",
    "status",
    "system_prompt",
]
