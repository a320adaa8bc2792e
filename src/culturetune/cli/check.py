"""``culturetune check-model``: does a model answer the instrument by content? (order agreement,
instruction probe, first token against text; :mod:`culturetune.reading.check`)."""

from __future__ import annotations

from typing import Annotated

import typer

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import print_json, status
from culturetune.cli.options import (
    AdapterOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    InstrumentOpt,
    JsonOpt,
    ModelOpt,
    ThreadsOpt,
    TrustOpt,
)
from culturetune.core import inputs
from culturetune.report.console import print_model_check


@command("check-model")
def check_model(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    instrument: InstrumentOpt = "vsm2013",
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Measure again instead of reading the cache.")
    ] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check whether a model answers the survey by content before anyone tunes it."""
    from culturetune.instrument.vsm import instrument_key, load_instrument

    model, device = inputs.check_model(model), inputs.check_device(device)
    adapter = common.check_adapter(adapter)
    key = instrument_key(instrument)
    load_instrument(key)  # a bad file is reported before the model loads
    lm = common.load_lm(model, device, str(dtype), trust_remote_code, threads, adapter)

    from culturetune.reading.check import check_model as run

    result = run(lm, key, refresh=refresh,
                 progress=None if as_json else lambda what: status(f"checking: {what} ..."))
    if as_json:
        print_json(result.to_dict())
    else:
        print_model_check(result)
