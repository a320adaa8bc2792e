"""The instrument's data model: items, index formulas, the six dimensions, and the bundled
wordings (package data). No file reading or input checking: those sit above, in
:mod:`culturetune.instrument.schema` and :mod:`culturetune.instrument.vsm`."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from culturetune.core.errors import CultureTuneError

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
    ``language``. ``None`` means the English defaults of :mod:`culturetune.reading.administer`.
    """

    name: str
    items: tuple[Item, ...]
    formulas: tuple[Formula, ...]
    official: bool
    source: str = ""
    language: str | None = None
    instruction: str | None = None
    content_free: tuple[str, ...] | None = None
    #: The instruction of each answer format (``{"words": ...}``), for a wording in another
    #: language; ``instruction`` is the number format's.
    instructions: Mapping[str, str] | None = None

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
        if self.instructions:
            d["instructions"] = dict(self.instructions)
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
                instructions=(None if not d.get("instructions") else
                              {str(k): str(v) for k, v in d["instructions"].items()}),
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



@functools.cache
def bundled(key: str) -> Instrument:
    """A bundled instrument by its name in :data:`INSTRUMENTS` (loaded once)."""
    text = (
        resources.files("culturetune")
        .joinpath("data", _INSTRUMENT_FILES[key])
        .read_text(encoding="utf-8")
    )
    return Instrument.from_dict(json.loads(text))


