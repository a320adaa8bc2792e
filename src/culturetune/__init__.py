"""culturetune: align a frozen language model with a country's culture (Hofstede's dimensions).

The Python API, with the command line's defaults (README, "Python API")::

    import culturetune as ct

    lm = ct.load_model()                              # the bundled SmolLM2-135M-Instruct
    plain = ct.survey_model(lm, "China")              # indices, loss vs China, uniform baseline
    run = ct.tune(lm, "China", "runs/china")          # a soft prompt; run.validity.verdict
    scores = ct.bench(lm, "China", prompts=[run])     # CulturalBench accuracy
    results = ct.run_experiment(lm, out="exp", countries=["China"])
    ct.show(plain)                                    # any result, as the command line prints it

Names are imported on first use, so ``import culturetune`` loads no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from culturetune.core.version import __version__

#: Public name -> the module that defines it (imported on first use).
_API = {
    "load_model": "culturetune.api",
    "survey_model": "culturetune.api",
    "tune": "culturetune.api",
    "bench": "culturetune.api",
    "run_experiment": "culturetune.api",
    "show": "culturetune.api",
    "check_model": "culturetune.reading.check",
    "ModelCheck": "culturetune.reading.check",
    "lookup_country": "culturetune.instrument.targets",
    "parse_target": "culturetune.instrument.targets",
    "country_table": "culturetune.instrument.targets",
    "Target": "culturetune.instrument.targets",
    "SoftPrompt": "culturetune.tuning.softprompt",
    "SurveyResult": "culturetune.reading.results",
    "TuneConfig": "culturetune.tuning.config",
    "TuneResult": "culturetune.tuning.search",
    "Condition": "culturetune.culturalbench",
    "BenchResult": "culturetune.culturalbench",
    "ExperimentConfig": "culturetune.experiment.config",
    "CultureTuneError": "culturetune.core.errors",
}

__all__ = [
    "__version__",
    "load_model",
    "survey_model",
    "tune",
    "bench",
    "run_experiment",
    "show",
    "check_model",
    "ModelCheck",
    "lookup_country",
    "parse_target",
    "country_table",
    "Target",
    "SoftPrompt",
    "SurveyResult",
    "TuneConfig",
    "TuneResult",
    "Condition",
    "BenchResult",
    "ExperimentConfig",
    "CultureTuneError",
]

if TYPE_CHECKING:
    from culturetune.api import bench, load_model, run_experiment, show, survey_model, tune
    from culturetune.core.errors import CultureTuneError
    from culturetune.culturalbench import BenchResult, Condition
    from culturetune.experiment.config import ExperimentConfig
    from culturetune.instrument.targets import Target, country_table, lookup_country, parse_target
    from culturetune.reading.check import ModelCheck, check_model
    from culturetune.reading.results import SurveyResult
    from culturetune.tuning.config import TuneConfig
    from culturetune.tuning.search import TuneResult
    from culturetune.tuning.softprompt import SoftPrompt


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule, ``culturetune.culturalbench``) on first use."""
    module = _API.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
