"""The Values Survey Module 2013: items, answer scales, index formulas and scoring.

Pure Python + numpy. An index is ``sum(coef * (mean[plus] - mean[minus])) + C`` over the item
means (1-5, 1 = first option); ``index_matrix`` gives the same formulas as a matrix so that a
whole population of candidates is scored with one matrix product.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from culturetune.core.arrays import as_float, constant
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_text
from culturetune.instrument.items import (
    DEFAULT_CONSTANT,
    DIMENSIONS,
    INSTRUMENTS,
    SCALE,
    Instrument,
    bundled,
)
from culturetune.instrument.schema import read_instrument_file

V = TypeVar("V")


def load_instrument(name: str | Path = "vsm2013") -> Instrument:
    """A bundled instrument (``"vsm2013"``: official wording; ``"paraphrase"``: reworded) or a
    user's instrument file (a path to a ``.json`` file in the schema of
    ``data/instrument.schema.json``). Bundled ones are loaded once and cached."""
    key = str(name).strip().lower()
    if key in INSTRUMENTS:
        return bundled(key)
    path = Path(str(name)).expanduser()
    if path.suffix.lower() == ".json" or path.exists() or "/" in str(name):
        return read_instrument_file(path)
    raise CultureTuneError(
        f"unknown instrument {name!r}; use one of {', '.join(INSTRUMENTS)} or the path of an "
        "instrument .json file (schema: culturetune/data/instrument.schema.json)"
    )


def instrument_key(name: str | Path) -> str:
    """How runs record an instrument: the bundled name, or the file's absolute path."""
    key = str(name).strip().lower()
    return key if key in INSTRUMENTS else str(Path(str(name)).expanduser().resolve())


def _instrument(instrument: Instrument | str | None) -> Instrument:
    if instrument is None:
        return load_instrument()
    if isinstance(instrument, str):
        return load_instrument(instrument)
    return instrument


# --------------------------------------------------------------------------- constants


def to_number(value: Any, what: str) -> float:
    """A finite float from a number or numeric string; ``what`` names it in the error."""
    if isinstance(value, bool):
        raise CultureTuneError(f"{what}: expected a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CultureTuneError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise CultureTuneError(f"{what}: expected a finite number, got {value!r}")
    return x


def _constant(value: Any, what: str) -> float:
    from culturetune.core.inputs import check_score

    return check_score(to_number(value, what), what)


def parse_constants(spec: str | float | Mapping[str, float] | None) -> dict[str, float]:
    """The constant C of each index.

    ``None`` -> 50 for every index; a number (or ``"0"``) -> that for every index;
    ``"PDI=0,IDV=10"`` or a mapping -> those, the others 50.
    """
    hint = "give one number (e.g. 0 or 50) or per-index values like 'PDI=0,IDV=10'"
    if spec is None:
        return dict.fromkeys(DIMENSIONS, DEFAULT_CONSTANT)
    if isinstance(spec, Mapping):
        pairs = [(str(k), v) for k, v in spec.items()]
    elif isinstance(spec, str):
        s = spec.strip()
        if not s:
            raise CultureTuneError(f"empty constants; {hint}")
        if "=" not in s:
            return dict.fromkeys(DIMENSIONS, _constant(s, f"bad constants {spec!r} ({hint})"))
        pairs = []
        for part in re.split(r"[,;\s]+", re.sub(r"\s*=\s*", "=", s)):
            if not part:
                continue
            k, sep, v = part.partition("=")
            if not sep:
                raise CultureTuneError(
                    f"bad constants {spec!r}: {part!r} is not NAME=VALUE; {hint}"
                )
            pairs.append((k, v))
    else:
        return dict.fromkeys(DIMENSIONS, _constant(spec, f"bad constants {spec!r} ({hint})"))
    return read_dimensions(pairs, f"bad constants {spec!r}", _constant, DEFAULT_CONSTANT,
                           kind="index")


def read_dimensions(
    pairs: Iterable[tuple[Any, Any]],
    where: str,
    read: Callable[[Any, str], V],
    missing: V,
    *,
    kind: str = "dimension",
    twice: str = "{dim} given twice",
) -> dict[str, V]:
    """One value per dimension from (key, raw value) pairs: keys matched without case or
    surrounding spaces, each read with ``read(raw, what)``; a dimension left out gets
    ``missing``. An unknown ``kind`` of key or a key given twice is refused, naming ``where``."""
    out: dict[str, V] = dict.fromkeys(DIMENSIONS, missing)
    seen: set[str] = set()
    for k, v in pairs:
        dim = str(k).strip().upper()
        if dim not in out:
            raise CultureTuneError(
                f"{where}: unknown {kind} {str(k).strip()!r}; valid: {', '.join(DIMENSIONS)}"
            )
        if dim in seen:
            raise CultureTuneError(f"{where}: {twice.format(dim=dim)}")
        seen.add(dim)
        out[dim] = read(v, f"{where}: value of {dim}")
    return out


def constants_vector(constants: str | float | Mapping[str, float] | None = None) -> np.ndarray:
    """The constants as a float64 vector in ``DIMENSIONS`` order."""
    c = parse_constants(constants)
    return np.array([c[d] for d in DIMENSIONS], dtype=np.float64)


# --------------------------------------------------------------------------- indices


def compute_indices(
    means: Mapping[str, float],
    constants: str | float | Mapping[str, float] | None = None,
    instrument: Instrument | str | None = None,
) -> dict[str, float]:
    """The six indices from item means (``{"m01": 2.3, ...}``, each in 1..5)."""
    inst = _instrument(instrument)
    c = parse_constants(constants)
    needed = sorted({v for f in inst.formulas for v in f.vars()})
    missing = [v for v in needed if v not in means]
    if missing:
        raise CultureTuneError(
            f"missing item means for {', '.join(missing)}; all of {needed[0]}..{needed[-1]} "
            "are needed to compute the six indices"
        )
    m = {}
    for v in needed:
        x = to_number(means[v], f"item mean {v}")
        if not SCALE[0] <= x <= SCALE[1]:
            raise CultureTuneError(f"item mean {v} = {x} is outside the answer scale 1..5")
        m[v] = x
    return {
        f.index: sum(coef * (m[p] - m[q]) for coef, p, q in f.terms) + c[f.index]
        for f in inst.formulas
    }


@functools.cache
def _index_matrix(instrument: Instrument) -> tuple[np.ndarray, tuple[str, ...]]:
    vars_ = instrument.vars
    col = {v: j for j, v in enumerate(vars_)}
    w = np.zeros((len(DIMENSIONS), len(vars_)), dtype=np.float64)
    for i, f in enumerate(instrument.formulas):
        for coef, p, q in f.terms:
            w[i, col[p]] += coef
            w[i, col[q]] -= coef
    w.flags.writeable = False
    return w, vars_


def index_matrix(
    instrument: Instrument | str | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(W, vars)``: W is [6, n_items] (rows in ``DIMENSIONS`` order, columns in ``vars``
    order) so that ``indices = means @ W.T + C``. W is read-only."""
    return _index_matrix(_instrument(instrument))


def compute_indices_batch(
    means: np.ndarray,
    constants: str | float | Mapping[str, float] | None = None,
    instrument: Instrument | str | None = None,
) -> np.ndarray:
    """Indices for a batch: ``means`` [..., n_items] (columns in item order) -> [..., 6].

    A numpy array or a torch tensor (float64 out, differentiable in the means): the numpy
    readings and the tuning objective's gradient use this one formula."""
    w, vars_ = index_matrix(instrument)
    arr = as_float(means)
    if arr.ndim == 0 or arr.shape[-1] != len(vars_):
        raise CultureTuneError(
            f"item means must have shape [..., {len(vars_)}] (one column per item "
            f"{vars_[0]}..{vars_[-1]}), got shape {tuple(arr.shape)}"
        )
    return arr @ constant(w.T, arr) + constant(constants_vector(constants), arr)


# --------------------------------------------------------------------------- respondents


@dataclass
class ResponseScore:
    """Scores of a group of human respondents."""

    means: dict[str, float]
    counts: dict[str, int]
    indices: dict[str, float]
    n_respondents: int
    constants: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResponseScore:
        return cls(
            means={k: float(v) for k, v in d["means"].items()},
            counts={k: int(v) for k, v in d["counts"].items()},
            indices={k: float(v) for k, v in d["indices"].items()},
            n_respondents=int(d["n_respondents"]),
            constants={k: float(v) for k, v in d.get("constants", {}).items()},
        )


def csv_delimiter(header_line: str) -> str:
    """The delimiter of a small CSV file: the most frequent of comma, semicolon and tab in its
    first line (a comma when none is there)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _parse_answer(raw: str) -> int | None:
    s = raw.strip()
    if not s:
        return None
    x = float(s)  # ValueError for non-numbers
    if not x.is_integer():
        raise ValueError
    v = int(x)
    if not SCALE[0] <= v <= SCALE[1]:
        raise ValueError
    return v


def read_responses(
    path: str | Path, instrument: Instrument | str | None = None
) -> list[dict[str, int | None]]:
    """Read a respondents CSV: one row per respondent, columns ``m01``..``m24`` with answers
    1..5 (other columns ignored; blank cell = no answer -> ``None``). Comma, semicolon or tab
    separated. Errors name the data row, counted from 1 at the first row below the header
    (as the spreadsheet row number minus one)."""
    vars_ = _instrument(instrument).vars
    p = Path(path)
    text = read_text(p, "responses file")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CultureTuneError(
            f"responses file {p} is empty; expected a header row with columns "
            f"{vars_[0]}..{vars_[-1]}"
        )
    reader = csv.reader(lines, delimiter=csv_delimiter(lines[0]))
    header = [h.strip().lower() for h in next(reader)]
    col = {}
    for j, h in enumerate(header):
        if h in vars_ and h not in col:
            col[h] = j
    missing = [v for v in vars_ if v not in col]
    if missing:
        raise CultureTuneError(
            f"responses file {p} lacks the columns {', '.join(missing)}; it needs one column per "
            f"item named {vars_[0]}..{vars_[-1]} (one row per respondent)"
        )
    rows: list[dict[str, int | None]] = []
    for n, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue  # a blank line is not a respondent
        row: dict[str, int | None] = {}
        for v in vars_:
            j = col[v]
            raw = cells[j] if j < len(cells) else ""
            try:
                row[v] = _parse_answer(raw)
            except ValueError:
                raise CultureTuneError(
                    f"responses file {p}, data row {n} (line {n + 1} of the file, counting "
                    f"the header as line 1), column {v}: {raw.strip()!r} is not an answer; "
                    "use a whole number 1-5 or leave the cell blank"
                ) from None
        rows.append(row)
    if not rows:
        raise CultureTuneError(f"responses file {p} has a header but no respondent rows")
    return rows


def score_responses(
    rows: Iterable[Mapping[str, int | None]],
    constants: str | float | Mapping[str, float] | None = None,
    instrument: Instrument | str | None = None,
) -> ResponseScore:
    """Item means, per-item answer counts and the six indices of a group of respondents.

    ``None`` (or a missing key) is a skipped answer. ``n_respondents`` counts rows with at
    least one answer."""
    inst = _instrument(instrument)
    vars_ = inst.vars
    sums = dict.fromkeys(vars_, 0)
    counts = dict.fromkeys(vars_, 0)
    n_resp = 0
    for n, row in enumerate(rows, start=1):
        answered = False
        for v in vars_:
            a = row.get(v)
            if a is None:
                continue
            if isinstance(a, bool) or not isinstance(a, int | np.integer) or not 1 <= a <= 5:
                raise CultureTuneError(
                    f"respondent {n}, item {v}: {a!r} is not an answer (whole number 1-5 or None)"
                )
            sums[v] += int(a)
            counts[v] += 1
            answered = True
        n_resp += answered
    empty = [v for v in vars_ if counts[v] == 0]
    if empty:
        raise CultureTuneError(
            f"no answers at all for item(s) {', '.join(empty)}; every item needs at least one "
            "answer to compute the indices"
        )
    means = {v: sums[v] / counts[v] for v in vars_}
    c = parse_constants(constants)
    return ResponseScore(
        means=means,
        counts=counts,
        indices=compute_indices(means, c, inst),
        n_respondents=n_resp,
        constants=c,
    )
