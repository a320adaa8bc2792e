"""The experiment's settings: :class:`ExperimentConfig` (countries, methods, seeds, budgets,
views, CulturalBench split), checked before any model loads, its cells, and what a run records
about the machine and the library versions."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from culturetune.core import defaults
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_text, write_json
from culturetune.core.inputs import (
    check_experiment_limits,
    check_known_settings,
    loads_json,
    parse_subspace,
)
from culturetune.experiment.methods import (
    BASELINES,
    DEFAULT_METHODS,
    METHOD_ORDERS,
    MethodSpec,
    judge_views,
    parse_method,
)
from culturetune.instrument.formats import FORMATS, check_format
from culturetune.instrument.orders import check_orders
from culturetune.instrument.targets import Target, lookup_country
from culturetune.instrument.vsm import instrument_key, load_instrument, parse_constants
from culturetune.reading.prompts import check_instrument_format
from culturetune.reading.validity import View, check_views

SPLITS: tuple[str, ...] = ("easy", "hard")
#: The reference study's four countries (arXiv 2503.16094).
DEFAULT_COUNTRIES: tuple[str, ...] = ("Saudi Arabia", "U.S.A.", "China", "India")
#: Evaluations per tuning run (docs/experiment.md, for the time it takes).
DEFAULT_BUDGET = 640
#: ``quick()``: 4 countries × (plain, persona, pso, de) × 1 seed, 320 evaluations per run.
QUICK_BUDGET = 320
QUICK_METHODS: tuple[str, ...] = ("plain", "persona", "pso", "de")
PARAPHRASE_NOTE = (
    "paraphrased VSM 2013 items written for culturetune (same answer scales and formulas); "
    "not the official instrument"
)


# --------------------------------------------------------------------------- configuration


def _names(value: Any, what: str) -> list[str]:
    """A list of names from a list or a comma-separated string."""
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise CultureTuneError(f"{what} must be a list of names (or one comma-separated string)")
    if not value:
        raise CultureTuneError(f"{what} must name at least one entry")
    return [v.strip() for v in value]


def _count(value: Any, what: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = " (or null)" if allow_none else ""
        raise CultureTuneError(f"{what} must be a whole number of at least 1{extra}, got {value!r}")
    return value


@dataclass
class ExperimentConfig:
    """Settings of one experiment; ``from_file`` reads them from JSON (keys = field names)."""

    model: str | None = None
    countries: list[str] = field(default_factory=lambda: list(DEFAULT_COUNTRIES))
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seeds: int = 3
    budget: int = DEFAULT_BUDGET
    population: int = 16
    tokens: int = 5
    placement: str = "answer"
    subspace: int | None = 64
    constants: Any = None
    bench_split: str | None = "easy"
    data: str | None = None
    bench_limit: int | None = None
    #: Option orders of tuned methods named without their own (``pso`` = ``pso-<orders>``).
    orders: str = defaults.ORDERS
    #: Tune methods named without ``-cal`` on calibrated answers too.
    calibrate: bool = False
    #: Option orders of CulturalBench letter scoring.
    bench_orders: str = defaults.BENCH_ORDERS
    #: More held-out wordings (instrument .json files) every cell is read in.
    validate_instruments: list[str] = field(default_factory=list)
    #: The answer format (culturetune.instrument.formats); ``auto`` is resolved from the model
    #: check when the experiment starts (results.json keeps what it resolved to).
    format: str = defaults.FORMAT
    #: The other formats every cell is also read in (the official items, order-balanced);
    #: ``None``: every other format the model can take (set when the experiment starts).
    other_formats: list[str] | None = None

    def __post_init__(self) -> None:
        for name in ("countries", "methods", "validate_instruments"):
            if isinstance(getattr(self, name), tuple):
                setattr(self, name, list(getattr(self, name)))

    @classmethod
    def quick(cls, **overrides: Any) -> ExperimentConfig:
        """The ``--quick`` preset: 1 seed, methods plain/persona/pso/de, budget 320 (about
        4-6 minutes for the four default countries on a 2-core CPU)."""
        base: dict[str, Any] = dict(seeds=1, methods=list(QUICK_METHODS), budget=QUICK_BUDGET)
        base.update(overrides)
        return cls(**base).validate()

    def validate(self) -> ExperimentConfig:
        """Check every setting; raises :class:`CultureTuneError` saying what to change."""
        from culturetune.reading.administer import check_placement

        self.countries = _names(self.countries, "countries")
        codes = [lookup_country(c).code for c in self.countries]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise CultureTuneError(f"countries name the same country twice ({', '.join(dup)})")
        self.orders = check_orders(self.orders, METHOD_ORDERS)
        if not isinstance(self.calibrate, bool):
            raise CultureTuneError(f"calibrate must be true or false, got {self.calibrate!r}")
        self.bench_orders = check_orders(self.bench_orders)
        self.methods = [m.lower() for m in _names(self.methods, "methods")]
        specs = [parse_method(m, self.orders, self.calibrate) for m in self.methods]
        seen = [(s.optimizer, s.orders, s.calibrate) if s.tuned else s.name for s in specs]
        if len(set(seen)) != len(seen):
            raise CultureTuneError("methods name the same method twice (pso and pso-"
                                   f"{self.orders} are the same here)")
        if isinstance(self.validate_instruments, str):
            self.validate_instruments = [self.validate_instruments]
        if not isinstance(self.validate_instruments, list):
            raise CultureTuneError("validate_instruments must be a list of instrument files")
        self.validate_instruments = [instrument_key(p) for p in self.validate_instruments]
        for path in self.validate_instruments:
            load_instrument(path)
        for name in ("seeds", "budget", "population", "tokens"):
            setattr(self, name, _count(getattr(self, name), name))
        self.subspace = _count(parse_subspace(self.subspace, "subspace"), "subspace",
                               allow_none=True)
        self.bench_limit = _count(self.bench_limit, "bench_limit", allow_none=True)
        check_placement(self.placement)
        parse_constants(self.constants)
        if self.bench_split is not None:
            self.bench_split = str(self.bench_split).lower()
            if self.bench_split not in SPLITS:
                raise CultureTuneError(
                    f"bench_split must be easy, hard or null (no CulturalBench), "
                    f"got {self.bench_split!r}"
                )
        if self.model is not None and not isinstance(self.model, str):
            raise CultureTuneError(f"model must be a name or path, got {self.model!r}")
        if self.data is not None:
            self.data = str(self.data)
        self.format = check_format(self.format)
        if self.format != "auto":
            for path in ["vsm2013", "paraphrase", "paraphrase2", *self.validate_instruments]:
                check_instrument_format(load_instrument(path), self.format)
        if self.other_formats is not None:
            if isinstance(self.other_formats, str):
                self.other_formats = [self.other_formats]
            self.other_formats = [check_format(f, FORMATS) for f in self.other_formats]
        check_experiment_limits(self)
        return self

    @property
    def read_format(self) -> str:
        """The format cells are read in (``number`` until ``auto`` is resolved)."""
        return "number" if self.format == "auto" else self.format

    @property
    def others(self) -> tuple[str, ...]:
        """The other formats every cell is also read in."""
        pool = FORMATS if self.other_formats is None else self.other_formats
        return tuple(f for f in pool if f != self.read_format)

    @property
    def targets(self) -> list[Target]:
        return [lookup_country(c) for c in self.countries]

    @property
    def specs(self) -> list[MethodSpec]:
        return [parse_method(m, self.orders, self.calibrate, self.read_format)
                for m in self.methods]

    @property
    def tuned_methods(self) -> list[str]:
        return [s.name for s in self.specs if s.tuned]

    @property
    def views(self) -> list[View]:
        """Every view a cell is read in: the judge views, each tuned method's training view and
        its checks (:func:`culturetune.reading.validity.check_views`), and the user's wordings."""
        out = judge_views(self.read_format, self.others)
        out += [View(p, "both", format=self.read_format) for p in self.validate_instruments]
        for spec in self.specs:
            if spec.tuned:
                train = spec.training_view
                out += [train, *(v for _, v in check_views(train, self.validate_instruments,
                                                           (), self.others))]
        return list(dict.fromkeys(out))

    def cells(self) -> list[tuple[Target, str, int | None]]:
        """Every (country, method, seed) cell in run order; deterministic methods have seed
        ``None``."""
        out: list[tuple[Target, str, int | None]] = []
        for target in self.targets:
            for method in self.methods:
                seeds: Sequence[int | None] = [None] if method in BASELINES else range(self.seeds)
                out += [(target, method, s) for s in seeds]
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "experiment config") -> ExperimentConfig:
        """Build and validate a config; unknown keys and bad values name ``source``."""
        if not isinstance(d, Mapping):
            raise CultureTuneError(
                f"{source}: expected a JSON object of settings, got {type(d).__name__}"
            )
        known = [f.name for f in fields(cls)]
        clean = {str(k).replace("-", "_"): v for k, v in d.items()}
        check_known_settings(clean, known, source)
        try:
            return cls(**clean).validate()
        except CultureTuneError as exc:
            raise CultureTuneError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> ExperimentConfig:
        """Read a JSON config file (``--config FILE``)."""
        path = Path(path)
        text = read_text(path, "config file")
        data = loads_json(text, f"config file {path}")
        return cls.from_dict(data, f"config file {path}")

    def to_file(self, path: str | Path) -> None:
        """Write the settings as a JSON config file that :meth:`from_file` reads back."""
        write_json(path, self.to_dict())


# --------------------------------------------------------------------------- experiment


def machine_info(lm: Any) -> dict[str, Any]:
    """Where the experiment ran: CPU, cores, torch threads, device and dtype."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if lm.device.startswith("cuda") else None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": lm.device,
        "gpu": gpu,
        "dtype": lm.dtype,
    }


def versions() -> dict[str, str]:
    """The versions an experiment records (culturetune.core.version.package_versions)."""
    from culturetune.core.version import package_versions

    return package_versions("torch", "transformers", "nevergrad", "numpy", python=True)


