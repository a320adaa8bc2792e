"""CulturalBench questions: validating them and choosing a country's questions (loading them from
the hub or a file is :mod:`~culturetune.culturalbench.loading`).

Data come from the Hugging Face hub (``kellycyy/CulturalBench``) or from a local CSV / JSON /
JSONL / Parquet file with the same columns; both are read by ``datasets.load_dataset`` and go
through one validation function, :func:`questions_from_dataset`, which turns rows into
:class:`Question` (Easy: options A-D and the right letter) or :class:`HardQuestion` (Hard: four
options, each true or false). Country names go through culturetune's look-up
(:func:`culturetune.instrument.targets.lookup_country`); Lebanon and Nepal, which Hofstede's table
lacks, keep the dataset's names. No torch here.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import lookup_country

HUB_ID = "kellycyy/CulturalBench"
HUB_CONFIGS = {"easy": "CulturalBench-Easy", "hard": "CulturalBench-Hard"}
SPLITS = ("easy", "hard")
LETTERS = ("A", "B", "C", "D")
EASY_COLUMNS = ("question_idx", "prompt_question", "prompt_option_a", "prompt_option_b",
                "prompt_option_c", "prompt_option_d", "answer", "country")
HARD_COLUMNS = ("question_idx", "prompt_question", "prompt_option", "answer", "country")
HARD_OPTIONS = 4
FILE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
#: The 45 countries of CulturalBench v1 as the dataset spells them. Lebanon and Nepal are not in
#: Hofstede's table and keep these names.
CULTURALBENCH_COUNTRIES = (
    "Argentina", "Australia", "Bangladesh", "Brazil", "Canada", "Chile", "China",
    "Czech Republic", "Egypt", "France", "Germany", "Hong Kong", "India", "Indonesia", "Iran",
    "Israel", "Italy", "Japan", "Lebanon", "Malaysia", "Mexico", "Morocco", "Nepal", "Netherlands",
    "New Zealand", "Nigeria", "Pakistan", "Peru", "Philippines", "Poland", "Romania", "Russia",
    "Saudi Arabia", "Singapore", "South Africa", "South Korea", "Spain", "Taiwan", "Thailand",
    "Turkey", "Ukraine", "United Kingdom", "United States", "Vietnam", "Zimbabwe",
)


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    """One CulturalBench-Easy question. ``country`` is culturetune's name for the country (the
    dataset's own where Hofstede's table lacks it); ``code`` its table code or ``None``."""

    question_idx: int
    country: str
    dataset_country: str
    question: str
    options: tuple[str, str, str, str]
    answer: str
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"question_idx": self.question_idx, "country": self.country,
                "dataset_country": self.dataset_country, "question": self.question,
                "options": list(self.options), "answer": self.answer, "code": self.code}


@dataclass(frozen=True)
class HardQuestion:
    """One CulturalBench-Hard question: its rows grouped, with each option's truth value."""

    question_idx: int
    country: str
    dataset_country: str
    question: str
    options: tuple[str, ...]
    truth: tuple[bool, ...]
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"question_idx": self.question_idx, "country": self.country,
                "dataset_country": self.dataset_country, "question": self.question,
                "options": list(self.options), "truth": list(self.truth), "code": self.code}


AnyQuestion = Question | HardQuestion


def _norm(name: str) -> str:
    s = unicodedata.normalize("NFKD", str(name)).casefold()
    return "".join(ch for ch in s if ch.isalnum())


_BENCH_BY_KEY = {_norm(c): c for c in CULTURALBENCH_COUNTRIES}


def resolve_country(name: str) -> tuple[str, str | None]:
    """culturetune's (name, code) for a country as a dataset spells it; CulturalBench countries
    missing from Hofstede's table (Lebanon, Nepal) keep the dataset's name and get code ``None``.
    """
    try:
        target = lookup_country(name)
    except CultureTuneError:
        bench = _BENCH_BY_KEY.get(_norm(name))
        if bench is None:
            raise
        return bench, None
    return target.name, target.code


def _close(name: str, choices: Sequence[str]) -> list[str]:
    folded = {c.casefold(): c for c in choices}
    hits = difflib.get_close_matches(str(name).casefold(), list(folded), n=5, cutoff=0.6)
    return [folded[h] for h in hits]


class _Problems:
    """Collects bad values of one kind and reports the first few in one error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: dict[str, list[str]] = {}

    def add(self, kind: str, where: str) -> None:
        self.found.setdefault(kind, []).append(where)

    def raise_if_any(self) -> None:
        if not self.found:
            return
        parts = []
        for kind, wheres in self.found.items():
            more = f" and {len(wheres) - 3} more" if len(wheres) > 3 else ""
            parts.append(f"{kind}: {'; '.join(wheres[:3])}{more}")
        raise CultureTuneError(f"{self.source}: " + ". ".join(parts))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    s = str(value).strip()
    return s or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if math.isfinite(f) and f == int(f) else None


_TRUE = {"true", "t", "yes", "1"}
_FALSE = {"false", "f", "no", "0"}


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    s = str(value).strip().casefold()
    return True if s in _TRUE else False if s in _FALSE else None


def _check_columns(columns: Sequence[str], split: str, source: str) -> None:
    need = EASY_COLUMNS if split == "easy" else HARD_COLUMNS
    missing = [c for c in need if c not in columns]
    if not missing:
        return
    other = "hard" if split == "easy" else "easy"
    other_cols = HARD_COLUMNS if other == "hard" else EASY_COLUMNS
    if all(c in columns for c in other_cols):
        raise CultureTuneError(
            f"{source} has the columns of CulturalBench-{other.capitalize()}, not "
            f"CulturalBench-{split.capitalize()}; use the {other} split (--split {other})"
        )
    unused = [c for c in columns if c not in need]
    hints = []
    for c in missing:
        close = _close(c, unused)
        if close:
            hints.append(f"{close[0]!r} -> {c!r}?")
    hint = f" (misnamed? {', '.join(hints)})" if hints else ""
    raise CultureTuneError(
        f"{source}: missing column(s) {', '.join(missing)}{hint}. Found: "
        f"{', '.join(columns) or '(none)'}. CulturalBench-{split.capitalize()} needs: "
        f"{', '.join(need)}"
    )


def questions_from_dataset(ds: Any, split: str, source: str = "data") -> list[AnyQuestion]:
    """Validate a table of CulturalBench rows and turn it into questions, in file order.

    ``ds`` is a ``datasets.Dataset`` (anything with ``column_names`` and ``to_dict()``).
    Missing or misnamed columns, empty texts, bad answers and unknown countries raise
    :class:`CultureTuneError` naming the rows.
    """
    split = check_split(split)
    columns = list(ds.column_names)
    _check_columns(columns, split, source)
    data = ds.to_dict()
    n = len(data[columns[0]]) if columns else 0
    if n == 0:
        raise CultureTuneError(f"{source}: no rows")
    problems = _Problems(source)
    countries: dict[str, tuple[str, str | None] | None] = {}

    def country_of(value: Any, where: str) -> tuple[str, str, str | None] | None:
        name = _text(value)
        if name is None:
            problems.add("empty country", where)
            return None
        if name not in countries:
            try:
                countries[name] = resolve_country(name)
            except CultureTuneError:
                countries[name] = None
        if countries[name] is None:
            close = _close(name, CULTURALBENCH_COUNTRIES)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.add("unknown country (neither in Hofstede's table nor among CulturalBench's "
                         "45 countries)", f"{where} {name!r}{hint}")
            return None
        return (name, *countries[name])

    rows: list[dict[str, Any]] = []
    for i in range(n):
        where = f"row {i + 1}"
        qidx = _int(data["question_idx"][i])
        if qidx is None:
            problems.add("question_idx must be an integer", f"{where} {data['question_idx'][i]!r}")
        else:
            where = f"row {i + 1} (question_idx {qidx})"
        question = _text(data["prompt_question"][i])
        if question is None:
            problems.add("empty prompt_question", where)
        country = country_of(data["country"][i], where)
        row: dict[str, Any] = {"qidx": qidx, "question": question, "country": country}
        raw = data["answer"][i]
        if split == "easy":
            opts = [_text(data[f"prompt_option_{x.lower()}"][i]) for x in LETTERS]
            for x, o in zip(LETTERS, opts, strict=True):
                if o is None:
                    problems.add(f"empty prompt_option_{x.lower()}", where)
            letter = _text(raw)
            letter = letter.upper() if letter else None
            if letter not in LETTERS:
                problems.add("answer must be one of A, B, C, D", f"{where} {raw!r}")
            row.update(options=tuple(opts), answer=letter)
        else:
            opt = _text(data["prompt_option"][i])
            if opt is None:
                problems.add("empty prompt_option", where)
            truth = _truth(raw)
            if truth is None:
                problems.add("answer must be TRUE or FALSE", f"{where} {raw!r}")
            row.update(option=opt, truth=truth)
        rows.append(row)
    problems.raise_if_any()
    return _easy_questions(rows, source) if split == "easy" else _hard_questions(rows, source)


def _easy_questions(rows: list[dict[str, Any]], source: str) -> list[AnyQuestion]:
    seen: set[int] = set()
    problems = _Problems(source)
    out: list[AnyQuestion] = []
    for i, r in enumerate(rows):
        if r["qidx"] in seen:
            problems.add("duplicate question_idx", f"row {i + 1} (question_idx {r['qidx']})")
        seen.add(r["qidx"])
        dataset_country, name, code = r["country"]
        out.append(Question(question_idx=r["qidx"], country=name, dataset_country=dataset_country,
                            question=r["question"], options=r["options"], answer=r["answer"],
                            code=code))
    problems.raise_if_any()
    return out


def _hard_questions(rows: list[dict[str, Any]], source: str) -> list[AnyQuestion]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["qidx"], []).append(r)
    problems = _Problems(source)
    out: list[AnyQuestion] = []
    for qidx, group in groups.items():
        first = group[0]
        if len(group) != HARD_OPTIONS:
            problems.add(f"each question needs {HARD_OPTIONS} rows (one per option)",
                         f"question_idx {qidx} has {len(group)}")
        if any(r["question"] != first["question"] for r in group):
            problems.add("rows of one question disagree on prompt_question",
                         f"question_idx {qidx}")
        if any(r["country"] != first["country"] for r in group):
            problems.add("rows of one question disagree on country", f"question_idx {qidx}")
        dataset_country, name, code = first["country"]
        out.append(HardQuestion(
            question_idx=qidx, country=name, dataset_country=dataset_country,
            question=first["question"], options=tuple(r["option"] for r in group),
            truth=tuple(r["truth"] for r in group), code=code,
        ))
    problems.raise_if_any()
    return out


# --------------------------------------------------------------------------- loading


def check_split(split: str) -> str:
    s = str(split).strip().lower()
    if s not in SPLITS:
        raise CultureTuneError(f"unknown CulturalBench split {split!r}; use easy or hard")
    return s


def _matches(name: str, code: str | None, q: AnyQuestion) -> bool:
    if code is not None and q.code == code:
        return True
    return _norm(name) in (_norm(q.country), _norm(q.dataset_country))


def select_questions(
    questions: Sequence[AnyQuestion],
    countries: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[AnyQuestion]:
    """Questions of the given countries (all when ``None``), grouped by country, at most
    ``limit`` per country in their original order."""
    by_country: dict[str, list[AnyQuestion]] = {}
    taken: set[int] = set()
    if countries:
        for name in countries:
            try:
                code: str | None = lookup_country(name).code
            except CultureTuneError:
                code = None
            hits = [q for q in questions if _matches(name, code, q)]
            if not hits:
                raise _no_country_error(name, code, questions)
            for q in hits:
                if q.question_idx not in taken:  # a country named twice counts once
                    taken.add(q.question_idx)
                    by_country.setdefault(q.country, []).append(q)
    else:
        for q in sorted(questions, key=lambda q: q.country.casefold()):
            by_country.setdefault(q.country, []).append(q)
    return [q for qs in by_country.values() for q in qs[:limit]]


def _no_country_error(name: str, code: str | None, questions: Sequence[AnyQuestion]) -> Exception:
    present = sorted({q.country for q in questions}, key=str.casefold)
    listing = f"countries in the data: {', '.join(present)}"
    if code is not None:
        return CultureTuneError(f"the CulturalBench data has no questions for "
                                f"{lookup_country(name).name}; {listing}")
    spellings = sorted({q.dataset_country for q in questions} | set(present), key=str.casefold)
    close = _close(name, spellings)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return CultureTuneError(f"unknown country {name!r}{hint} ({listing})")


def countries_in(questions: Sequence[AnyQuestion]) -> list[str]:
    """The countries of a list of questions, in order of first appearance."""
    return list(dict.fromkeys(q.country for q in questions))
