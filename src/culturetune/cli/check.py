"""``culturetune check-model``: does a model answer the instrument by content? (order agreement,
instruction probe, first token against text; :mod:`culturetune.reading.check`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import print_json, status
from culturetune.cli.options import (
    AdapterOpt,
    InstrumentOpt,
    JsonOpt,
    ModelOpt,
)
from culturetune.core.errors import CultureTuneError
from culturetune.report.console import print_model_check

CheckFormat = StrEnum("CheckFormat", {n: n for n in ("all", "number", "letter", "words")})


@command("check-model")
@common.with_load_options
def check_model_command(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    instrument: InstrumentOpt = "vsm2013",
    format: Annotated[
        CheckFormat,
        typer.Option("--format", help="The answer format to check in: number, letter, words, "
                     "or all of them (one table).", case_sensitive=False),
    ] = CheckFormat.all,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Measure again instead of reading the cache.")
    ] = False,
    load: common.LoadOptions = common.DEFAULT_LOAD,
    as_json: JsonOpt = False,
) -> None:
    """Check whether a model answers the survey by content, in each answer format, before
    anyone tunes it."""
    from culturetune.instrument.formats import FORMATS
    from culturetune.instrument.vsm import instrument_key, load_instrument
    from culturetune.reading.prompts import check_instrument_format

    load_model = common.model_loader(model, adapter, load)
    key = instrument_key(instrument)
    inst = load_instrument(key)  # a bad file is reported before the model loads
    asked = list(FORMATS) if str(format) == "all" else [str(format)]
    if len(asked) == 1:
        check_instrument_format(inst, asked[0])
    lm = load_model()

    from culturetune.reading.check import check_model, content_format

    progress = None if as_json else lambda what: status(f"checking: {what} ...")
    checks, skipped = {}, {}
    for fmt in asked:
        try:
            checks[fmt] = check_model(lm, key, refresh=refresh, progress=progress, format=fmt)
        except CultureTuneError as exc:
            if len(asked) == 1:
                raise
            skipped[fmt] = str(exc)  # this model or instrument cannot take the format
            if not as_json:
                status(f"skipped the {fmt} format: {exc}")
    if as_json:
        print_json({"model": lm.name, "instrument": key,
                    "formats": {f: c.to_dict() for f, c in checks.items()},
                    "skipped": skipped, "answers_by_content_in": content_format(checks)})
    else:
        print_model_check(checks)
