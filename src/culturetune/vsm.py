"""The Values Survey Module 2013: items, answer scales, index formulas and scoring.

Pure Python + numpy. An index is ``sum(coef * (mean[plus] - mean[minus])) + C`` over the item
means (1-5, 1 = first option); ``index_matrix`` gives the same formulas as a matrix so that a
whole population of candidates is scored with one matrix product.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from culturetune.errors import CultureTuneError
from culturetune.files import read_text

DIMENSIONS: tuple[str, ...] = ("PDI", "IDV", "MAS", "UAI", "LTO", "IVR")
DIMENSION_NAMES: dict[str, str] = {
    "PDI": "Power Distance",
    "IDV": "Individualism vs Collectivism",
    "MAS": "Masculinity vs Femininity",
    "UAI": "Uncertainty Avoidance",
    "LTO": "Long- vs Short-Term Orientation",
    "IVR": "Indulgence vs Restraint",
}
DEFAULT_CONSTANT = 50.0
SCALE = (1, 5)  # answers are 1..5, 1 = first option listed

_INSTRUMENT_FILES = {
    "vsm2013": "vsm2013.json",
    "paraphrase": "vsm2013_paraphrase.json",
    "paraphrase2": "vsm2013_paraphrase2.json",
}
INSTRUMENTS: tuple[str, ...] = tuple(_INSTRUMENT_FILES)


# --------------------------------------------------------------------------- instrument


@dataclass(frozen=True)
class Item:
    """One content item. ``stem`` is the shared lead-in ("" for a stand-alone question);
    ``options`` are the answer labels, option 1 first."""

    id: int
    var: str
    group: str
    stem: str
    text: str
    options: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Item:
        try:
            return cls(
                id=int(d["id"]),
                var=str(d["var"]),
                group=str(d["group"]),
                stem=str(d.get("stem") or ""),
                text=str(d["text"]),
                options=tuple(str(o) for o in d["options"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CultureTuneError(f"malformed item {dict(d)!r}: {e!r}") from None


@dataclass(frozen=True)
class Formula:
    """``index = sum(coef * (mean[plus] - mean[minus]) for coef, plus, minus in terms) + C``."""

    index: str
    terms: tuple[tuple[float, str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "terms": [list(t) for t in self.terms]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Formula:
        try:
            terms = tuple((float(c), str(p), str(m)) for c, p, m in d["terms"])
            return cls(index=str(d["index"]), terms=terms)
        except (KeyError, TypeError, ValueError) as e:
            raise CultureTuneError(f"malformed formula {dict(d)!r}: {e!r}") from None

    def vars(self) -> tuple[str, ...]:
        """The item variables this formula uses."""
        return tuple(v for _, p, m in self.terms for v in (p, m))


@dataclass(frozen=True)
class Instrument:
    """A questionnaire: items in order, one formula per dimension (in ``DIMENSIONS`` order).

    ``instruction`` is the answer instruction that ends every item's prompt and
    ``content_free`` the question texts used for calibration; a translation sets them in its own
    ``language``. ``None`` means the English defaults of :mod:`culturetune.survey`.
    """

    name: str
    items: tuple[Item, ...]
    formulas: tuple[Formula, ...]
    official: bool
    source: str = ""
    language: str | None = None
    instruction: str | None = None
    content_free: tuple[str, ...] | None = None

    @property
    def vars(self) -> tuple[str, ...]:
        """Item variable names (``m01``..``m24``) in item order."""
        return tuple(it.var for it in self.items)

    def item(self, key: int | str) -> Item:
        """An item by id (``7``) or variable name (``"m07"``)."""
        for it in self.items:
            if it.id == key or it.var == key:
                return it
        raise CultureTuneError(f"instrument {self.name!r} has no item {key!r}")

    def formula(self, index: str) -> Formula:
        """The formula of one index (``"PDI"``)."""
        for f in self.formulas:
            if f.index == index:
                return f
        raise CultureTuneError(
            f"instrument {self.name!r} has no index {index!r}; valid: {', '.join(DIMENSIONS)}"
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "official": self.official,
            "source": self.source,
            "items": [it.to_dict() for it in self.items],
            "formulas": [f.to_dict() for f in self.formulas],
        }
        for key in ("language", "instruction"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.content_free is not None:
            d["content_free"] = list(self.content_free)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Instrument:
        try:
            cf = d.get("content_free")
            inst = cls(
                name=str(d["name"]),
                items=tuple(Item.from_dict(x) for x in d["items"]),
                formulas=tuple(Formula.from_dict(x) for x in d["formulas"]),
                official=bool(d["official"]),
                source=str(d.get("source", "")),
                language=d.get("language"),
                instruction=d.get("instruction"),
                content_free=None if cf is None else tuple(str(x) for x in cf),
            )
        except (KeyError, TypeError) as e:
            raise CultureTuneError(f"malformed instrument: missing or bad field {e!r}") from None
        _validate_instrument(inst)
        return inst


def _validate_instrument(inst: Instrument) -> None:
    vars_ = inst.vars
    if len(set(vars_)) != len(vars_):
        raise CultureTuneError(f"instrument {inst.name!r}: duplicate item variables")
    if tuple(f.index for f in inst.formulas) != DIMENSIONS:
        raise CultureTuneError(
            f"instrument {inst.name!r}: formulas must be {', '.join(DIMENSIONS)} in that order"
        )
    for f in inst.formulas:
        unknown = [v for v in f.vars() if v not in vars_]
        if unknown:
            raise CultureTuneError(
                f"instrument {inst.name!r}: formula {f.index} uses unknown items {unknown}"
            )
    for it in inst.items:
        if len(it.options) != SCALE[1] - SCALE[0] + 1:
            raise CultureTuneError(
                f"instrument {inst.name!r}: item {it.var} needs {SCALE[1]} options"
            )


def load_instrument(name: str | Path = "vsm2013") -> Instrument:
    """A bundled instrument (``"vsm2013"``: official wording; ``"paraphrase"``: reworded) or a
    user's instrument file (a path to a ``.json`` file in the schema of
    ``data/instrument.schema.json``). Bundled ones are loaded once and cached."""
    key = str(name).strip().lower()
    if key in _INSTRUMENT_FILES:
        return _load_instrument(key)
    from culturetune.instruments import read_instrument_file

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
    return key if key in _INSTRUMENT_FILES else str(Path(str(name)).expanduser().resolve())


@functools.cache
def _load_instrument(key: str) -> Instrument:
    text = (
        resources.files("culturetune")
        .joinpath("data", _INSTRUMENT_FILES[key])
        .read_text(encoding="utf-8")
    )
    return Instrument.from_dict(json.loads(text))


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
    from culturetune.inputs import check_score

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
    out = dict.fromkeys(DIMENSIONS, DEFAULT_CONSTANT)
    seen: set[str] = set()
    for k, v in pairs:
        dim = k.strip().upper()
        if dim not in out:
            raise CultureTuneError(
                f"bad constants {spec!r}: unknown index {k.strip()!r}; "
                f"valid: {', '.join(DIMENSIONS)}"
            )
        if dim in seen:
            raise CultureTuneError(f"bad constants {spec!r}: {dim} given twice")
        seen.add(dim)
        out[dim] = _constant(v, f"bad constants {spec!r}: value of {dim}")
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
    """Indices for a batch: ``means`` [..., n_items] (columns in item order) -> [..., 6]."""
    w, vars_ = index_matrix(instrument)
    arr = np.asarray(means, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != len(vars_):
        raise CultureTuneError(
            f"item means must have shape [..., {len(vars_)}] (one column per item "
            f"{vars_[0]}..{vars_[-1]}), got shape {arr.shape}"
        )
    return arr @ w.T + constants_vector(constants)


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


def _delimiter(header_line: str) -> str:
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
    reader = csv.reader(lines, delimiter=_delimiter(lines[0]))
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
