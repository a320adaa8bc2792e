"""Users' instrument files: a translation or rewording of the VSM 2013 as JSON.

The format is the package's own (``data/vsm2013.json``), documented as a JSON Schema in
``data/instrument.schema.json``. Every problem is reported with the file and the field
(``items[3].options``) so that a user can fix it; the checks are written out here rather than
delegated to a schema validator so that the messages say what to do, and so that rules a schema
cannot express (formulas naming defined items, every item used) are checked too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_text
from culturetune.instrument.items import DIMENSIONS, Instrument, bundled

#: Instrument files larger than this are refused before parsing.
MAX_BYTES = 5_000_000
N_OPTIONS = 5
TOP_KEYS = {
    "name": "required text: a short name for tables",
    "official": "required true/false: whether this is the official instrument's wording",
    "items": "required list of items",
    "formulas": "optional list of six formulas (default: the VSM 2013's)",
    "source": "optional text: where the wording comes from",
    "language": "optional text: the language of the wording, e.g. 'de'",
    "instruction": "optional text: the answer instruction ending every item's prompt (the "
                   "number format's)",
    "instructions": "optional object: the instruction of each answer format (number, letter, "
                    "words), for a wording in another language",
    "content_free": "optional list of texts: content-free questions for --calibrate",
    "title": "optional text",
    "label": "optional text",
    "scale": "optional text",
    "constants": "optional text",
    "$schema": "optional text",
}
ITEM_KEYS = ("id", "var", "group", "stem", "text", "options")


class _Where:
    """Builds error messages that name the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, field: str, problem: str) -> CultureTuneError:
        at = f", field {field}" if field else ""
        return CultureTuneError(
            f"instrument file {self.path}{at}: {problem} (see culturetune/data/"
            "instrument.schema.json or docs/reading.md, 'Custom instruments')"
        )


def _text(where: _Where, value: Any, field: str, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise where.error(field, f"expected text, got {type(value).__name__} {value!r:.40}")
    if not empty_ok and not value.strip():
        raise where.error(field, "must not be empty")
    return value


def read_instrument_file(path: str | Path) -> Any:
    """Read and check an instrument file; returns a
    :class:`culturetune.instrument.items.Instrument`."""
    path = Path(path)
    where = _Where(path)
    if path.is_dir():
        raise where.error("", "is a folder; give the path of a .json file")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CultureTuneError(f"instrument file not found: {path}") from None
    except OSError as exc:
        raise where.error("", f"cannot be read ({exc})") from None
    if size > MAX_BYTES:
        raise where.error("", f"is {size} bytes; an instrument file is at most {MAX_BYTES}")
    text = read_text(path, "instrument file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise where.error("", f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise where.error("", "is nested too deeply to be an instrument") from None
    return Instrument.from_dict(check_instrument_dict(data, where, path.stem))


def check_instrument_dict(data: Any, where: _Where, default_name: str) -> dict[str, Any]:
    """The checked content of an instrument file, in the form ``Instrument.from_dict`` takes."""
    if not isinstance(data, Mapping):
        raise where.error("", f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(k for k in data if k not in TOP_KEYS)
    if unknown:
        raise where.error(unknown[0], f"unknown field; valid fields: {', '.join(TOP_KEYS)}")
    for key in ("name", "official", "items"):
        if key not in data:
            raise where.error(key, f"missing ({TOP_KEYS[key]})")
    name = _text(where, data["name"], "name")
    if not isinstance(data["official"], bool):
        raise where.error("official", "expected true or false")
    out: dict[str, Any] = {"name": name, "official": data["official"]}
    for key in ("source", "language", "instruction", "title", "label", "scale", "constants",
                "$schema"):
        if key in data and data[key] is not None:
            value = _text(where, data[key], key, empty_ok=key == "source")
            if key in ("source", "language", "instruction"):
                out[key] = value
    own = data.get("instructions")
    if own is not None:
        if not isinstance(own, dict) or not own:
            raise where.error("instructions", "expected an object such as {\"words\": \"...\"}")
        for fmt, text in own.items():
            if fmt not in ("number", "letter", "words"):
                raise where.error(f"instructions.{fmt}", "unknown answer format; use number, "
                                  "letter or words")
            _text(where, text, f"instructions.{fmt}")
        out["instructions"] = dict(own)
    cf = data.get("content_free")
    if cf is not None:
        if not isinstance(cf, list) or not cf:
            raise where.error("content_free", "expected a non-empty list of texts")
        out["content_free"] = [
            _text(where, x, f"content_free[{i}]", empty_ok=True) for i, x in enumerate(cf)
        ]
    items = data["items"]
    if not isinstance(items, list) or not items:
        raise where.error("items", "expected a non-empty list of items")
    out["items"] = [_item(where, it, i) for i, it in enumerate(items)]
    seen: dict[str, int] = {}
    for i, it in enumerate(out["items"]):
        if it["var"] in seen:
            raise where.error(f"items[{i}].var", f"{it['var']!r} is also item {seen[it['var']]}")
        seen[it["var"]] = i
    if data.get("formulas") is None:
        out["formulas"] = [f.to_dict() for f in bundled("vsm2013").formulas]
    else:
        out["formulas"] = _formulas(where, data["formulas"], DIMENSIONS)
    for i, f in enumerate(out["formulas"]):
        for j, (_, plus, minus) in enumerate(f["terms"]):
            for var in (plus, minus):
                if var not in seen:
                    raise where.error(
                        f"formulas[{i}].terms[{j}]",
                        f"names item {var!r}, which no entry of items defines (a missing "
                        "item, or a typo in the formula)")
    used = {v for f in out["formulas"] for _, p, m in f["terms"] for v in (p, m)}
    extra = [v for v in seen if v not in used]
    if extra:
        raise where.error(f"items[{seen[extra[0]]}]",
                          f"item {extra[0]!r} is used by no formula (extra item); remove it")
    return out


def _item(where: _Where, it: Any, i: int) -> dict[str, Any]:
    at = f"items[{i}]"
    if not isinstance(it, Mapping):
        raise where.error(at, f"expected an object, got {type(it).__name__}")
    unknown = sorted(k for k in it if k not in ITEM_KEYS)
    if unknown:
        raise where.error(f"{at}.{unknown[0]}", f"unknown field; valid: {', '.join(ITEM_KEYS)}")
    for key in ("var", "text", "options"):
        if key not in it:
            raise where.error(f"{at}.{key}", "missing")
    var = _text(where, it["var"], f"{at}.var")
    item_id = it.get("id", i + 1)
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise where.error(f"{at}.id", f"expected a whole number, got {item_id!r:.40}")
    options = it["options"]
    if not isinstance(options, list):
        raise where.error(f"{at}.options", f"expected a list of {N_OPTIONS} texts")
    if len(options) != N_OPTIONS:
        raise where.error(f"{at}.options",
                          f"has {len(options)} options; every item needs exactly {N_OPTIONS}")
    return {
        "id": item_id,
        "var": var.strip(),
        "group": _text(where, it.get("group", "single"), f"{at}.group"),
        "stem": _text(where, it.get("stem") or "", f"{at}.stem", empty_ok=True),
        "text": _text(where, it["text"], f"{at}.text"),
        "options": [_text(where, o, f"{at}.options[{j}]") for j, o in enumerate(options)],
    }


def _formulas(where: _Where, formulas: Any, dims: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(formulas, list):
        raise where.error("formulas", "expected a list of six formulas")
    out = []
    for i, f in enumerate(formulas):
        at = f"formulas[{i}]"
        if not isinstance(f, Mapping) or not {"index", "terms"} <= set(f) or set(f) - {
                "index", "terms", "dimension"}:
            raise where.error(at, 'expected {"index": "PDI", "terms": [[35, "m07", "m02"], ...]} '
                              '(and optionally "dimension": its name)')
        index = _text(where, f["index"], f"{at}.index")
        terms = f["terms"]
        if not isinstance(terms, list) or not terms:
            raise where.error(f"{at}.terms", "expected a non-empty list of [coef, plus, minus]")
        clean = []
        for j, t in enumerate(terms):
            ok = (isinstance(t, list) and len(t) == 3 and not isinstance(t[0], bool)
                  and isinstance(t[0], int | float) and all(isinstance(v, str) for v in t[1:]))
            if not ok:
                raise where.error(f"{at}.terms[{j}]",
                                  'expected [coefficient, "plus item", "minus item"]')
            clean.append([float(t[0]), t[1], t[2]])
        out.append({"index": index, "terms": clean})
    got = tuple(f["index"] for f in out)
    if got != dims:
        raise where.error("formulas", f"must be {', '.join(dims)} in that order, got "
                          f"{', '.join(got) or 'none'}")
    return out


__all__ = ["MAX_BYTES", "check_instrument_dict", "read_instrument_file"]
