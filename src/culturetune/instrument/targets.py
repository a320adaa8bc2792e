"""Reference scores to align with: Hofstede's 2015 country table, look-up by name, code or
alias, custom targets, and the loss between computed indices and a target."""

from __future__ import annotations

import csv
import difflib
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from culturetune.core.arrays import as_float, constant, namespace
from culturetune.core.errors import CultureTuneError
from culturetune.core.inputs import check_score, is_file, loads_json, read_user_text
from culturetune.instrument.aliases import COUNTRY_ALIASES
from culturetune.instrument.vsm import DIMENSIONS, csv_delimiter, read_dimensions, to_number

TABLE_SOURCE = "Hofstede's six-dimension country scores, dataset of 2015-08-16 (geerthofstede.com)"
LOSS_KINDS: tuple[str, ...] = ("l1", "l2")


def _key(name: str) -> str:
    """Comparison key: case-, accent-, punctuation- and space-insensitive; '&' = 'and';
    a leading 'the' is dropped."""
    s = unicodedata.normalize("NFKD", str(name)).casefold().replace("&", " and ")
    s = re.sub(r"^\s*the\s+", "", s)
    return "".join(ch for ch in s if ch.isalnum())


# --------------------------------------------------------------------------- Target


def _score(value: Any, what: str) -> float | None:
    """A score, or ``None`` for a missing (``None`` or blank) one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_score(to_number(value.strip() if isinstance(value, str) else value, what), what)


def _normalise_scores(scores: Mapping[str, Any], where: str) -> dict[str, float | None]:
    return read_dimensions(scores.items(), where, _score, None,
                           twice="dimension {dim} given twice")


@dataclass(frozen=True)
class Target:
    """Reference scores of a country or a custom target. ``scores`` holds all six dimensions
    (``None`` = not available); ``estimated`` lists those that are estimates, not measured."""

    name: str
    code: str | None
    scores: dict[str, float | None]
    source: str
    estimated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", _normalise_scores(self.scores, f"target {self.name!r}"))
        est = tuple(str(d).strip().upper() for d in self.estimated)
        bad = [d for d in est if d not in DIMENSIONS]
        if bad:
            raise CultureTuneError(f"target {self.name!r}: unknown estimated dimensions {bad}")
        object.__setattr__(self, "estimated", est)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimensions that have a value, in ``DIMENSIONS`` order."""
        return tuple(d for d in DIMENSIONS if self.scores[d] is not None)

    @property
    def values(self) -> dict[str, float]:
        """The available scores only."""
        return {d: v for d, v in self.scores.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "code": self.code,
            "scores": dict(self.scores),
            "source": self.source,
            "estimated": list(self.estimated),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Target:
        if not isinstance(d, Mapping) or "scores" not in d or "name" not in d:
            raise CultureTuneError(f"malformed target {d!r}: needs 'name' and 'scores'")
        if not isinstance(d["scores"], Mapping):
            raise CultureTuneError(f"malformed target {d!r}: 'scores' must be a mapping")
        return cls(
            name=str(d["name"]),
            code=None if d.get("code") is None else str(d["code"]),
            scores=dict(d["scores"]),
            source=str(d.get("source", "")),
            estimated=tuple(d.get("estimated", ())),
        )


# --------------------------------------------------------------------------- country table


def _read_package_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("culturetune").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


# (code, name, ((dimension, score), ...), source, estimated dimensions)
_Row = tuple[str, str, tuple[tuple[str, float | None], ...], str, tuple[str, ...]]


@functools.cache
def _table_rows() -> tuple[_Row, ...]:
    estimates: dict[str, dict[str, tuple[float, str]]] = {}
    for r in _read_package_csv("estimates.csv"):
        estimates.setdefault(r["code"], {})[r["dimension"]] = (float(r["value"]), r["source"])
    rows = []
    for r in _read_package_csv("hofstede_2015.csv"):
        code = r["code"]
        scores = {d: (float(r[d]) if r[d].strip() else None) for d in DIMENSIONS}
        source = TABLE_SOURCE
        est: tuple[str, ...] = ()
        if code in estimates:
            est = tuple(d for d in DIMENSIONS if d in estimates[code])
            for d in est:
                scores[d] = estimates[code][d][0]
            notes = sorted({estimates[code][d][1] for d in est})
            measured = [d for d in DIMENSIONS if d not in est and scores[d] is not None]
            note = "; ".join(notes)
            source = f"{TABLE_SOURCE} for {', '.join(measured)}; {', '.join(est)}: {note}"
        rows.append((code, r["country"], tuple(scores.items()), source, est))
    return tuple(rows)


def country_table() -> list[Target]:
    """All 111 countries and regions of the 2015 table (missing scores are ``None``); Saudi
    Arabia's four missing scores are filled with Hofstede Insights estimates, marked as such."""
    return [
        Target(name=name, code=code, scores=dict(scores), source=source, estimated=est)
        for code, name, scores, source, est in _table_rows()
    ]


@functools.cache
def _index() -> tuple[dict[str, str], dict[str, str]]:
    """(key -> code, display string -> code) over names, codes and aliases."""
    by_key: dict[str, str] = {}
    display: dict[str, str] = {}
    rows = _table_rows()
    for code, *_ in rows:  # codes and names first: they win over aliases
        by_key.setdefault(_key(code), code)
        display[code] = code
    for code, name, *_ in rows:
        by_key.setdefault(_key(name), code)
        display[name] = code
    for alias, code in COUNTRY_ALIASES.items():
        by_key.setdefault(_key(alias), code)
        display[alias] = code
    return by_key, display


def lookup_country(name: str) -> Target:
    """A country of the 2015 table by name, code or common alias (case, punctuation and
    spaces ignored): ``"China"``, ``"CHI"``, ``"USA"``, ``"United Kingdom"``, ``"south korea"``."""
    by_key, display = _index()
    code = by_key.get(_key(name))
    if code is None:
        names = {c: n for c, n, *_ in _table_rows()}
        query = str(name).strip().casefold()
        folded = {s.casefold(): c for s, c in display.items()}
        close = difflib.get_close_matches(query, list(folded), n=12, cutoff=0.6)
        suggestions = list(dict.fromkeys(names[folded[s]] for s in close))[:5]
        hint = (
            "give a country or region name or code from Hofstede's 2015 table (111 entries), "
            "or explicit scores such as 'PDI=80,IDV=20'"
        )
        if suggestions:
            raise CultureTuneError(
                f"unknown country {name!r}; did you mean: {', '.join(suggestions)}? ({hint})"
            )
        raise CultureTuneError(f"unknown country {name!r}; {hint}")
    for t in country_table():
        if t.code == code:
            return t
    raise AssertionError(f"alias points to missing code {code}")  # pragma: no cover


# --------------------------------------------------------------------------- custom targets


def _scores_from_spec(spec: str) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for part in re.split(r"[,;\s]+", re.sub(r"\s*=\s*", "=", spec.strip())):
        if not part:
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise CultureTuneError(
                f"bad target {spec!r}: {part!r} is not DIMENSION=VALUE (e.g. 'PDI=80,IDV=20')"
            )
        dim = k.strip().upper()
        if dim in scores:
            raise CultureTuneError(f"bad target {spec!r}: {dim} given twice")
        if not v.strip():
            raise CultureTuneError(f"bad target {spec!r}: {dim} has no value")
        scores[dim] = v
    return scores


def _target_from_json(path: Path) -> Target:
    data = loads_json(read_user_text(path, "target file"), f"target file {path}")
    if not isinstance(data, dict):
        raise CultureTuneError(
            f'target file {path}: expected an object like {{"PDI": 80, "IDV": 20}} or '
            f'{{"name": ..., "scores": {{...}}}}, got {type(data).__name__}'
        )
    where = f"target file {path}"
    if "scores" in data:
        unknown = sorted(set(data) - {"name", "code", "scores", "source", "estimated"})
        if unknown:
            raise CultureTuneError(f"{where}: unknown fields {unknown}")
        if not isinstance(data["scores"], dict):
            raise CultureTuneError(f"{where}: 'scores' must be an object like {{\"PDI\": 80}}")
        est = data.get("estimated", [])
        if not isinstance(est, list):
            raise CultureTuneError(f"{where}: 'estimated' must be a list of dimensions")
        return Target(
            name=str(data.get("name") or path.stem),
            code=None if data.get("code") is None else str(data["code"]),
            scores=_normalise_scores(data["scores"], where),
            source=str(data.get("source") or f"custom target from {path}"),
            estimated=tuple(est),
        )
    return Target(
        name=path.stem,
        code=None,
        scores=_normalise_scores(data, where),
        source=f"custom target from {path}",
    )


def _target_from_csv(path: Path) -> Target:
    where = f"target file {path}"
    lines = [ln for ln in read_user_text(path, "target file").splitlines() if ln.strip()]
    if not lines:
        raise CultureTuneError(f"{where}: the file is empty")
    rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=csv_delimiter(lines[0]))]
    header = [c.upper() for c in rows[0]]
    twice = sorted({c for c in header if header.count(c) > 1 and c in DIMENSIONS})
    if twice:
        raise CultureTuneError(f"{where}: dimension {', '.join(twice)} given twice in the header")
    if all(c in DIMENSIONS for c in header):  # wide form: header + one value row
        if len(rows) != 2:
            raise CultureTuneError(
                f"{where}: expected a header row of dimension names and exactly one row of "
                f"values, found {len(rows) - 1} value rows"
            )
        if len(rows[1]) != len(header):
            raise CultureTuneError(
                f"{where}: the value row has {len(rows[1])} cells but the header has {len(header)}"
            )
        scores = _normalise_scores(dict(zip(header, rows[1], strict=True)), where)
    elif all(len(r) == 2 for r in rows):  # long form: dimension,value
        body = rows[1:] if rows[0][0].upper() not in DIMENSIONS else rows
        scores = _normalise_scores(_pairs_to_dict(body, where), where)
    else:
        raise CultureTuneError(
            f"{where}: expected either a header row of dimension names (PDI,IDV,...) and one "
            "row of values, or two columns 'dimension,value' with one dimension per row"
        )
    return Target(name=path.stem, code=None, scores=scores, source=f"custom target from {path}")


def _pairs_to_dict(rows: list[list[str]], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in rows:
        dim = k.upper()
        if dim in out:
            raise CultureTuneError(f"{where}: dimension {dim} given twice")
        out[dim] = v
    return out


def parse_target(spec: str) -> Target:
    """A target from a country name/code/alias, a score list ``"PDI=80,IDV=20"`` (any subset),
    or a ``.json`` / ``.csv`` file of scores."""
    if isinstance(spec, Target):
        return spec
    s = str(spec).strip()
    if not s:
        raise CultureTuneError(
            "empty target; give a country (e.g. 'China'), scores like 'PDI=80,IDV=20', or a "
            ".json/.csv file"
        )
    path = Path(s).expanduser()
    suffix = path.suffix.lower()
    if suffix in (".json", ".csv") or is_file(path):
        if not is_file(path):
            raise CultureTuneError(f"target file not found: {path}")
        try:
            if suffix == ".json":
                target = _target_from_json(path)
            elif suffix == ".csv":
                target = _target_from_csv(path)
            else:
                raise CultureTuneError(
                    f"target file {path}: unsupported file type {suffix or '(none)'!r}; "
                    "use .json or .csv"
                )
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise CultureTuneError(f"cannot read target file {path}: {e}") from None
    elif "=" in s:
        target = Target(
            name="custom",
            code=None,
            scores=_normalise_scores(_scores_from_spec(s), f"bad target {s!r}"),
            source=f"custom scores {s!r}",
        )
    else:
        return lookup_country(s)
    if not target.dimensions:
        raise CultureTuneError(
            f"target {target.name!r} has no scores; give at least one of {', '.join(DIMENSIONS)}"
        )
    return target


# --------------------------------------------------------------------------- loss


@dataclass
class Loss:
    """Distance between computed indices and a target over the target's dimensions.
    ``gaps[d] = index[d] - target[d]``."""

    value: float
    kind: str
    dimensions: tuple[str, ...]
    gaps: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "kind": self.kind,
            "dimensions": list(self.dimensions),
            "gaps": dict(self.gaps),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Loss:
        return cls(
            value=float(d["value"]),
            kind=str(d["kind"]),
            dimensions=tuple(d["dimensions"]),
            gaps={k: float(v) for k, v in d["gaps"].items()},
        )


def _check_kind(kind: str) -> str:
    k = str(kind).strip().lower()
    if k not in LOSS_KINDS:
        raise CultureTuneError(
            f"unknown loss {kind!r}; valid: l1 (mean absolute difference), "
            "l2 (root mean square difference)"
        )
    return k


def _check_target(target: Target) -> tuple[str, ...]:
    dims = target.dimensions
    if not dims:
        raise CultureTuneError(f"target {target.name!r} has no scores to compare with")
    return dims


def loss(indices: Mapping[str, float], target: Target, kind: str = "l1") -> Loss:
    """``l1``: mean |index - target| over the target's dimensions; ``l2``: root mean square."""
    k = _check_kind(kind)
    dims = _check_target(target)
    missing = [d for d in dims if d not in indices]
    if missing:
        raise CultureTuneError(f"indices lack {', '.join(missing)}, which the target scores")
    gaps = {d: float(indices[d]) - float(target.scores[d]) for d in dims}  # type: ignore[arg-type]
    g = np.array(list(gaps.values()), dtype=np.float64)
    value = float(np.mean(np.abs(g))) if k == "l1" else float(np.sqrt(np.mean(g * g)))
    return Loss(value=value, kind=k, dimensions=dims, gaps=gaps)


def loss_batch(indices: np.ndarray, target: Target, kind: str = "l1") -> np.ndarray:
    """Vectorised ``loss``: ``indices`` [..., 6] (columns in ``DIMENSIONS`` order) -> [...].

    A numpy array or a torch tensor (differentiable: the tuning objective's gradient uses this
    one formula)."""
    k = _check_kind(kind)
    dims = _check_target(target)
    arr = as_float(indices)
    if arr.ndim == 0 or arr.shape[-1] != len(DIMENSIONS):
        raise CultureTuneError(
            f"indices must have shape [..., {len(DIMENSIONS)}] (columns "
            f"{', '.join(DIMENSIONS)}), got shape {tuple(arr.shape)}"
        )
    xp = namespace(arr)
    pick = np.zeros((len(DIMENSIONS), len(dims)))
    for j, d in enumerate(dims):
        pick[DIMENSIONS.index(d), j] = 1.0
    ref = [target.scores[d] for d in dims]
    g = arr @ constant(pick, arr) - constant(ref, arr)
    if k == "l1":
        return xp.mean(xp.abs(g), axis=-1)
    return xp.sqrt(xp.mean(g * g, axis=-1))
