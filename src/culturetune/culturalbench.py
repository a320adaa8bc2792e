"""CulturalBench (Easy and Hard): loading, validating and scoring a model under several conditions.

Data come from the Hugging Face hub (``kellycyy/CulturalBench``) or from a local CSV / JSON /
JSONL / Parquet file with the same columns; both are read by ``datasets.load_dataset`` and go
through one validation function, :func:`questions_from_dataset`.

* **Easy**: a question with options A-D, in one of three formulations. ``letter`` reads the
  next-token distribution over the four letters after the assistant header, in each option
  order of an order set (``cyclic``: every option once under every letter), mapped back to the
  dataset's option order and averaged, so that a preference for a letter cannot score. ``mc`` is
  lm-evaluation-harness's multiple-choice formulation: the options are shown, the context ends
  with ``Answer:`` and the letters are scored as continuations (outside the chat template as lm-eval
  runs it by default, or inside it). ``cloze`` (alias ``loglik``) shows the question alone and
  compares the summed log-likelihood of each option's text as the answer (and the same divided by
  the option's length in characters, lm-eval's ``acc_norm``).
* **Hard**: every (question, option) pair is judged true or false from P(True) vs P(False); a
  question counts as right only when all four judgements are (the benchmark's headline measure).

A :class:`Condition` is what is applied to the model: a system prompt (persona prompting) and/or a
soft prompt. :func:`run_bench` evaluates several conditions on the same questions and reports
every accuracy with a 95 % Wilson interval and an exact McNemar test against the plain model.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from culturetune.engine import PromptScorer, _forward, _make_cache, split_tokens
from culturetune.errors import CultureTuneError
from culturetune.models import PLAIN_SYSTEM, PLAIN_USER, LoadedModel
from culturetune.stats import Accuracy, Comparison, accuracy, compare
from culturetune.survey import PLACEMENTS, label_token_ids, persona_prompt
from culturetune.targets import lookup_country
from culturetune.views import Order, option_orders, shown_options, to_content_order

HUB_ID = "kellycyy/CulturalBench"
HUB_CONFIGS = {"easy": "CulturalBench-Easy", "hard": "CulturalBench-Hard"}
SPLITS = ("easy", "hard")
SCORINGS = ("letter", "mc", "cloze")
#: Other names accepted for a scoring: ``loglik`` was the name of ``cloze`` before there were
#: three formulations.
SCORING_ALIASES = {"loglik": "cloze"}
SCORING_NOTES = {
    "letter": "options A-D shown with an instruction line; next-token probability of each "
              "letter after the assistant header",
    "mc": "lm-evaluation-harness's multiple choice: options shown, context ending 'Answer:'; "
          "log-likelihood of each letter as the continuation",
    "cloze": "question alone; log-likelihood of each option's text as the continuation "
             "(the model never sees the other options, so fluency and length weigh in)",
}
LETTERS = ("A", "B", "C", "D")
EASY_COLUMNS = ("question_idx", "prompt_question", "prompt_option_a", "prompt_option_b",
                "prompt_option_c", "prompt_option_d", "answer", "country")
HARD_COLUMNS = ("question_idx", "prompt_question", "prompt_option", "answer", "country")
HARD_OPTIONS = 4
FILE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
ALL_COUNTRIES = "All countries"
EASY_INSTRUCTION = "Answer with the letter of the correct option only."
HARD_INSTRUCTION = ("Is this answer true or false for this question? "
                    "Answer with True or False only.")
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
# Surface forms of each label, in the same variant order for every label (see label_token_ids).
LETTER_FORMS = tuple((x, " " + x) for x in LETTERS)
TRUTH_FORMS = (("True", "true", " True", " true"), ("False", "false", " False", " false"))
LETTER_HINT = "use --scoring mc or cloze (Easy) or another model"
TRUTH_HINT = "use another model for the Hard split"

Progress = Callable[[str, int, int], None]


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


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide ``datasets``' progress bars while loading (restored afterwards)."""
    import datasets

    ds_logging = datasets.logging
    was_enabled = not datasets.are_progress_bars_disabled()
    level = ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity_error()
    try:
        yield
    finally:
        ds_logging.set_verbosity(level)
        if was_enabled:
            datasets.enable_progress_bars()


def _hub_dataset(split: str) -> Any:
    import datasets

    config = HUB_CONFIGS[split]
    try:
        with _quiet_datasets():
            return datasets.load_dataset(HUB_ID, config, split="test")
    except Exception as exc:  # network, authentication, missing config: all end the same way
        raise CultureTuneError(
            f"could not load {HUB_ID} ({config}) from the Hugging Face hub: {exc}. Without "
            "network access pass --data with a local CSV/JSON/JSONL/Parquet copy"
        ) from exc


def _data_file(path: Path, split: str) -> Path:
    if path.is_dir():
        stem = HUB_CONFIGS[split]
        found = [p for p in sorted(path.iterdir()) if p.stem == stem and p.suffix in FILE_FORMATS]
        if not found:
            raise CultureTuneError(
                f"folder {path} holds no {stem}{{{','.join(FILE_FORMATS)}}} file; pass the file "
                "itself with --data"
            )
        return found[0]
    if not path.is_file():
        raise CultureTuneError(f"CulturalBench data file not found: {path}")
    return path


def _file_dataset(path: Path, split: str) -> tuple[Any, str]:
    import datasets

    path = _data_file(path.expanduser(), split)
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CultureTuneError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use "
            f"{', '.join(FILE_FORMATS)}"
        )
    # CSV: keep texts such as "None" or "NA" as written instead of turning them into nulls.
    kwargs: dict[str, Any] = {"na_filter": False} if fmt == "csv" else {}
    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # parse errors surface as several exception types
        cause = exc.__cause__ or exc
        raise CultureTuneError(f"could not read {path} as {fmt.upper()}: {cause}") from exc
    return ds, str(path)


def load_dataset_table(split: str = "easy", data: str | Path | None = None) -> tuple[Any, str]:
    """The raw ``datasets.Dataset`` of a split (hub when ``data`` is ``None``) and its source."""
    split = check_split(split)
    if data is None:
        return _hub_dataset(split), f"{HUB_ID} ({HUB_CONFIGS[split]})"
    return _file_dataset(Path(data), split)


def load_culturalbench(
    split: str = "easy",
    data: str | Path | None = None,
    countries: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[AnyQuestion]:
    """CulturalBench questions of one split, from the hub or a local file.

    ``countries`` selects countries by any name culturetune knows (``"USA"``, ``"United
    States"``) or the dataset's own spelling; the result lists them in that order (otherwise
    alphabetically). ``limit`` keeps at most the first N questions per country, in file order.
    """
    split = check_split(split)
    if limit is not None and limit < 1:
        raise CultureTuneError(f"limit must be at least 1, got {limit}")
    ds, source = load_dataset_table(split, data)
    questions = questions_from_dataset(ds, split, source)
    return select_questions(questions, countries, limit)


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


# --------------------------------------------------------------------------- conditions


@dataclass
class Condition:
    """What is applied to the model: a system prompt and/or a soft prompt.

    ``persona=True`` uses :func:`culturetune.survey.persona_prompt` of each question's country
    as the system prompt. ``soft`` is a :class:`~culturetune.softprompt.SoftPrompt` (any object
    with ``embeddings`` ``[tokens, hidden]`` and ``placement`` in prefix/system/answer).
    """

    name: str
    system: str | None = None
    soft: Any = None
    persona: bool = False

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise CultureTuneError("a condition needs a name")
        if self.persona and self.system is not None:
            raise CultureTuneError(f"condition {self.name!r}: give either a system prompt or "
                                   "persona=True, not both")
        if self.soft is not None:
            emb = getattr(self.soft, "embeddings", None)
            placement = getattr(self.soft, "placement", None)
            if not isinstance(emb, torch.Tensor) or emb.dim() != 2:
                raise CultureTuneError(f"condition {self.name!r}: the soft prompt needs "
                                       "embeddings of shape [tokens, hidden]")
            if placement not in PLACEMENTS:
                raise CultureTuneError(f"condition {self.name!r}: unknown soft-prompt placement "
                                       f"{placement!r}; use one of {', '.join(PLACEMENTS)}")

    @classmethod
    def plain(cls) -> Condition:
        return cls("plain")

    @classmethod
    def persona_prompted(cls) -> Condition:
        return cls("persona", persona=True)

    def system_for(self, country: str) -> str | None:
        return persona_prompt(country) if self.persona else self.system

    def soft_tensor(self, lm: LoadedModel) -> torch.Tensor | None:
        """The soft prompt as ``[1, tokens, hidden]`` (``None`` without one)."""
        if self.soft is None:
            return None
        emb = self.soft.embeddings
        if int(emb.shape[1]) != lm.hidden_size:
            raise CultureTuneError(
                f"condition {self.name!r}: the soft prompt has hidden size {int(emb.shape[1])} "
                f"but model {lm.name} has {lm.hidden_size}; use a prompt tuned for this model"
            )
        return emb.detach()[None]

    def split_at(self, text: str, user_offset: int) -> int:
        """Character offset in a rendered prompt where the soft prompt goes."""
        placement = None if self.soft is None else self.soft.placement
        return {"prefix": 0, "system": user_offset}.get(placement, len(text))

    def to_dict(self) -> dict[str, Any]:
        soft = None
        if self.soft is not None:
            soft = {"tokens": int(self.soft.embeddings.shape[0]), "placement": self.soft.placement}
        return {"name": self.name, "system": self.system, "persona": self.persona,
                "soft_prompt": soft}


# --------------------------------------------------------------------------- scoring


def length_batches(texts: Sequence[str], size: int) -> Iterator[list[int]]:
    """Indices of ``texts`` in batches of ``size``, shortest first (similar lengths pad less)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    step = max(1, size)
    for i in range(0, len(order), step):
        yield order[i : i + step]


def label_groups(label_ids: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """All labels' token ids in one flat list, and each label's positions in that list."""
    flat = [i for ids in label_ids for i in ids]
    groups, at = [], 0
    for ids in label_ids:
        groups.append(list(range(at, at + len(ids))))
        at += len(ids)
    return flat, groups


def label_logprobs(
    scorer: PromptScorer, soft: torch.Tensor | None, flat: list[int], groups: list[list[int]]
) -> torch.Tensor:
    """``[prompts, labels]`` log-probability of each label (its forms summed) after each of the
    scorer's prompts, under one soft prompt ``[1, tokens, hidden]`` (or none)."""
    lp = scorer.next_token_logprobs(soft, flat)[0].cpu()
    return torch.stack([lp[:, g].logsumexp(-1) for g in groups], -1)


def label_probs(
    lm: LoadedModel,
    texts: Sequence[str],
    splits: Sequence[int],
    soft: torch.Tensor | None,
    label_ids: Sequence[Sequence[int]],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token probabilities of each label after each prompt, batched through
    :class:`~culturetune.engine.PromptScorer`.

    Returns ``(probs, mass)``: ``[prompts, labels]`` renormalised over the labels (forms of one
    label summed) and ``[prompts]`` the total probability the model put on the labels.
    """
    flat, groups = label_groups(label_ids)
    per_label = torch.empty(len(texts), len(groups))
    done = 0
    for idx in length_batches(texts, batch_size):
        segs = split_tokens(lm, [texts[i] for i in idx], [splits[i] for i in idx])
        per_label[idx] = label_logprobs(PromptScorer(lm, segs), soft, flat, groups)
        done += len(idx)
        if progress:
            progress(done)
    total = per_label.logsumexp(-1)
    return (per_label - total[:, None]).exp(), total.exp()


def continuation_logprobs(
    lm: LoadedModel,
    contexts: Sequence[str],
    splits: Sequence[int],
    continuations: Sequence[Sequence[str]],
    soft: torch.Tensor | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Summed log-probability of each continuation text after its context.

    The context (with the soft prompt ``[1, tokens, hidden]`` inserted at ``splits``) is run once
    per context and its KV cache shared by all of its continuations, which are right-padded and
    scored in one further pass. Returns one list of sums per context.
    """
    tok = lm.tokenizer
    model = lm.model
    device = torch.device(lm.device)
    embed = model.get_input_embeddings()
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    dtype = embed.weight.dtype
    soft_rows = soft[0].to(device, dtype) if soft is not None and soft.shape[1] else None
    pad = tok.pad_token_id or 0
    out: list[list[float]] = [[] for _ in contexts]
    done = 0
    for idx in length_batches(contexts, batch_size):
        segs = split_tokens(lm, [contexts[i] for i in idx], [splits[i] for i in idx])
        rows = []
        for pre, post in zip(segs.pre, segs.post, strict=True):
            parts = [embed(torch.tensor(pre, dtype=torch.long, device=device))] if pre else []
            if soft_rows is not None:
                parts.append(soft_rows)
            if post:
                parts.append(embed(torch.tensor(post, dtype=torch.long, device=device)))
            rows.append(torch.cat(parts, 0))
        b, lc = len(rows), max(r.shape[0] for r in rows)
        ctx_len = torch.tensor([r.shape[0] for r in rows], device=device)
        ctx = torch.zeros(b, lc, rows[0].shape[1], dtype=dtype, device=device)
        ctx_mask = torch.zeros(b, lc, dtype=torch.long, device=device)
        for i, r in enumerate(rows):  # left-padded
            ctx[i, lc - r.shape[0]:] = r
            ctx_mask[i, lc - r.shape[0]:] = 1
        pos = (ctx_mask.cumsum(-1) - 1).clamp(min=0)
        first = _forward(decoder, inputs_embeds=ctx, attention_mask=ctx_mask, position_ids=pos,
                         use_cache=True)
        cache = getattr(first, "cache", None) or first.past_key_values
        kv = [(layer[0], layer[1]) for layer in cache]
        last = first.last_hidden_state[:, -1]
        # One row per (context, continuation), right-padded.
        owner, conts = [], []
        for j, i in enumerate(idx):
            for c in continuations[i]:
                ids = tok.encode(c, add_special_tokens=False)
                if not ids:
                    raise CultureTuneError(f"continuation {c!r} encodes to no tokens")
                owner.append(j)
                conts.append(ids)
        own = torch.tensor(owner, device=device)
        lq = max(len(c) for c in conts)
        cont_ids = torch.full((len(conts), lq), pad, dtype=torch.long, device=device)
        cont_mask = torch.zeros(len(conts), lq, dtype=torch.long, device=device)
        for r, ids in enumerate(conts):
            cont_ids[r, : len(ids)] = torch.tensor(ids, device=device)
            cont_mask[r, : len(ids)] = 1
        cache2 = _make_cache([(k[own], v[own]) for k, v in kv])
        second = _forward(
            decoder, inputs_embeds=embed(cont_ids),
            attention_mask=torch.cat([ctx_mask[own], cont_mask], 1),
            position_ids=ctx_len[own][:, None] + torch.arange(lq, device=device)[None],
            cache=cache2, use_cache=True,
        )
        # The state predicting continuation token t is the one before it.
        states = torch.cat([last[own][:, None], second.last_hidden_state[:, :-1]], 1)
        valid = cont_mask.bool()
        logp = torch.log_softmax(head(states[valid]).float(), -1)
        tok_lp = logp.gather(1, cont_ids[valid][:, None])[:, 0]
        row_of = torch.arange(len(conts), device=device)[:, None].expand(-1, lq)[valid]
        sums = torch.zeros(len(conts), device=device).index_add_(0, row_of, tok_lp).cpu()
        for r, j in enumerate(owner):
            out[idx[j]].append(float(sums[r]))
        done += len(idx)
        if progress:
            progress(done)
    return out


# --------------------------------------------------------------------------- evaluation


def easy_prompt(q: Question, order: Order | None = None) -> str:
    """The user message of letter scoring: the question, options A-D and the instruction.
    ``order`` lists the options in another order (letter j shows option ``order[j]``)."""
    options = q.options if order is None else shown_options(q.options, order)
    lines = [q.question] + [f"{x}. {o}" for x, o in zip(LETTERS, options, strict=True)]
    return "\n".join(lines + [EASY_INSTRUCTION])


def hard_prompt(question: str, option: str) -> str:
    """The user message of one Hard judgement."""
    return f"Question: {question}\nAnswer: {option}\n{HARD_INSTRUCTION}"


@dataclass(frozen=True)
class EasyOutcome:
    """The model's answer to one Easy question. ``letter`` scoring fills ``probs`` (renormalised
    over A-D) and ``mass``; ``mc`` fills ``loglik``; ``cloze`` fills ``loglik`` and the
    ``*_norm`` fields."""

    question_idx: int
    country: str
    answer: str
    predicted: str
    correct: bool
    probs: tuple[float, ...] | None = None
    mass: float | None = None
    loglik: tuple[float, ...] | None = None
    predicted_norm: str | None = None
    correct_norm: bool | None = None
    #: Letter scoring in several option orders: the option (as its letter in the dataset's
    #: order) predicted in each order alone.
    order_predicted: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("probs", "loglik", "order_predicted"):
            d[k] = None if d[k] is None else list(d[k])
        return d


@dataclass(frozen=True)
class HardOutcome:
    """The model's four judgements of one Hard question."""

    question_idx: int
    country: str
    truth: tuple[bool, ...]
    p_true: tuple[float, ...]
    mass: tuple[float, ...]

    @property
    def judged(self) -> tuple[bool, ...]:
        return tuple(p > 0.5 for p in self.p_true)

    @property
    def judgements_correct(self) -> tuple[bool, ...]:
        return tuple(j == t for j, t in zip(self.judged, self.truth, strict=True))

    @property
    def correct(self) -> bool:
        return all(self.judgements_correct)

    def to_dict(self) -> dict[str, Any]:
        return {"question_idx": self.question_idx, "country": self.country,
                "truth": list(self.truth), "p_true": list(self.p_true), "mass": list(self.mass),
                "judged": list(self.judged), "correct": self.correct}


def _counter(progress: Progress | None, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda done: progress(name, done, total)


def evaluate_easy(
    lm: LoadedModel,
    questions: Sequence[Question],
    condition: Condition,
    scoring: str = "letter",
    batch_size: int | None = None,
    progress: Progress | None = None,
    orders: str = "shown",
) -> list[EasyOutcome]:
    """Answer Easy questions under a condition, batched; one outcome per question.

    Letter scoring asks each question in every option order of ``orders``
    (:mod:`culturetune.views`), maps each distribution over A-D back to the dataset's option
    order and predicts the option with the highest average probability.
    """
    scoring = check_scoring(scoring, "easy")
    qs = list(questions)
    if not qs:
        return []
    soft = condition.soft_tensor(lm)
    if scoring == "letter":
        perms = option_orders(orders, len(LETTERS))
        tick = _counter(progress, condition.name, len(qs) * len(perms))
        texts, splits = [], []
        for order in perms:
            for q in qs:
                text, user_at = lm.render(easy_prompt(q, order), condition.system_for(q.country))
                texts.append(text)
                splits.append(condition.split_at(text, user_at))
        ids = label_token_ids(lm.tokenizer, LETTER_FORMS, LETTER_HINT)
        probs, mass = label_probs(lm, texts, splits, soft, ids, batch_size or 32, tick)
        by_order = to_content_order(probs.double().numpy().reshape(len(perms), len(qs), -1),
                                    perms)
        avg, mass_avg = by_order.mean(0), mass.double().numpy().reshape(len(perms), -1).mean(0)
        out = []
        for i, q in enumerate(qs):
            pred = LETTERS[int(np.argmax(avg[i]))]
            each = tuple(LETTERS[int(np.argmax(by_order[o, i]))] for o in range(len(perms)))
            out.append(EasyOutcome(q.question_idx, q.country, q.answer, pred, pred == q.answer,
                                   probs=tuple(float(x) for x in avg[i]),
                                   mass=float(mass_avg[i]),
                                   order_predicted=each if len(perms) > 1 else None))
        return out
    evaluate = evaluate_mc if scoring == "mc" else evaluate_cloze
    return evaluate(lm, qs, condition, batch_size=batch_size, progress=progress)


def mc_prompt(q: Question) -> str:
    """lm-eval's multiple-choice context: the question, options A-D and ``Answer:``."""
    lines = [q.question] + [f"{x}. {o}" for x, o in zip(LETTERS, q.options, strict=True)]
    return "\n".join(lines + ["Answer:"])


def lmeval_context(
    lm: LoadedModel, user: str, system: str | None = None, chat_template: bool = True
) -> tuple[str, int]:
    """A context as lm-evaluation-harness builds it, and the offset where the user text starts.

    In the chat template (``--apply_chat_template``): the user turn rendered ready for the
    assistant's reply. Outside it, or for a model without one: ``user`` itself, after a
    ``"{system}\\n\\n"`` paragraph when there is a system prompt.
    """
    if chat_template and lm.has_chat_template:
        return lm.render(user, system)
    head = PLAIN_SYSTEM.format(system=system) if system else ""
    return head + user, len(head)


def choice_logprobs(
    lm: LoadedModel,
    contexts: Sequence[str],
    user_offsets: Sequence[int],
    choices: Sequence[Sequence[str]],
    condition: Condition,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """lm-eval's log-likelihood of each choice after its context, under a condition.

    As lm-eval's ``_encode_pair`` does, whitespace that ends a context (the newline after a chat
    template's assistant header) is scored as the start of every choice. A soft prompt at the
    ``answer`` placement still sits after that whitespace, right before the choice; the
    whitespace is then scored in a pass of its own, without the prompt.
    """
    soft = condition.soft_tensor(lm)
    heads = [c.rstrip() for c in contexts]
    tails = [c[len(h):] for c, h in zip(contexts, heads, strict=True)]
    if soft is None or condition.soft.placement != "answer":
        splits = [condition.split_at(h, at) for h, at in zip(heads, user_offsets, strict=True)]
        conts = [[t + c for c in cs] for t, cs in zip(tails, choices, strict=True)]
        return continuation_logprobs(lm, heads, splits, conts, soft, batch_size, progress)
    out = continuation_logprobs(lm, contexts, [len(c) for c in contexts], choices, soft,
                                batch_size, progress)
    spaced = [i for i, t in enumerate(tails) if t]
    if spaced:
        lead = continuation_logprobs(lm, [heads[i] for i in spaced],
                                     [len(heads[i]) for i in spaced],
                                     [[tails[i]] for i in spaced], None, batch_size)
        for i, (ws,) in zip(spaced, lead, strict=True):
            out[i] = [ws + x for x in out[i]]
    return out


def _choice_scores(
    lm: LoadedModel,
    qs: Sequence[Question],
    users: Sequence[str],
    choices: Sequence[Sequence[str]],
    condition: Condition,
    chat_template: bool,
    batch_size: int | None,
    progress: Progress | None,
) -> list[list[float]]:
    contexts, offsets = [], []
    for q, user in zip(qs, users, strict=True):
        text, at = lmeval_context(lm, user, condition.system_for(q.country), chat_template)
        contexts.append(text)
        offsets.append(at)
    tick = _counter(progress, condition.name, len(qs))
    return choice_logprobs(lm, contexts, offsets, choices, condition, batch_size or 16, tick)


def _ranked(q: Question, sums: Sequence[float], texts: Sequence[str] | None = None) -> EasyOutcome:
    """The outcome of choosing the most likely option (and, given the option texts, the most
    likely per character)."""
    best = LETTERS[max(range(len(sums)), key=sums.__getitem__)]
    if texts is None:
        return EasyOutcome(q.question_idx, q.country, q.answer, best, best == q.answer,
                           loglik=tuple(sums))
    normed = [s / max(1, len(t)) for s, t in zip(sums, texts, strict=True)]
    best_norm = LETTERS[max(range(len(normed)), key=normed.__getitem__)]
    return EasyOutcome(q.question_idx, q.country, q.answer, best, best == q.answer,
                       loglik=tuple(sums), predicted_norm=best_norm,
                       correct_norm=best_norm == q.answer)


def evaluate_mc(
    lm: LoadedModel,
    questions: Sequence[Question],
    condition: Condition,
    chat_template: bool = True,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> list[EasyOutcome]:
    """lm-eval's multiple-choice formulation: :func:`mc_prompt` as the context and the letters
    as continuations, with lm-eval's target delimiter (``" A"``.. outside the chat template,
    ``"A"``.. inside it); the most likely letter is the answer."""
    qs = list(questions)
    if not qs:
        return []
    chat = chat_template and lm.has_chat_template
    letters = [("" if chat else " ") + x for x in LETTERS]
    ll = _choice_scores(lm, qs, [mc_prompt(q) for q in qs], [letters] * len(qs), condition,
                        chat, batch_size, progress)
    return [_ranked(q, sums) for q, sums in zip(qs, ll, strict=True)]


def evaluate_cloze(
    lm: LoadedModel,
    questions: Sequence[Question],
    condition: Condition,
    chat_template: bool = True,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> list[EasyOutcome]:
    """The cloze formulation: the question alone as the context (``"Question: {q}\\nAnswer:"``
    outside the chat template), each option's text as the continuation. Also answers by
    log-likelihood per character of the option (lm-eval's ``acc_norm``)."""
    qs = list(questions)
    if not qs:
        return []
    chat = chat_template and lm.has_chat_template
    delim = "" if chat else " "
    users = [q.question if chat else PLAIN_USER.format(user=q.question) for q in qs]
    conts = [[delim + o for o in q.options] for q in qs]
    ll = _choice_scores(lm, qs, users, conts, condition, chat, batch_size, progress)
    return [_ranked(q, sums, q.options) for q, sums in zip(qs, ll, strict=True)]


def evaluate_hard(
    lm: LoadedModel,
    questions: Sequence[HardQuestion],
    condition: Condition,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> list[HardOutcome]:
    """Judge every (question, option) pair of Hard questions true or false, batched."""
    qs = list(questions)
    if not qs:
        return []
    soft = condition.soft_tensor(lm)
    texts, splits = [], []
    for q in qs:
        system = condition.system_for(q.country)
        for option in q.options:
            text, user_at = lm.render(hard_prompt(q.question, option), system)
            texts.append(text)
            splits.append(condition.split_at(text, user_at))
    ids = label_token_ids(lm.tokenizer, TRUTH_FORMS, TRUTH_HINT)
    tick = _counter(progress, condition.name, len(texts))
    probs, mass = label_probs(lm, texts, splits, soft, ids, batch_size or 32, tick)
    p_true, masses = probs[:, 0].tolist(), mass.tolist()
    out, at = [], 0
    for q in qs:
        k = len(q.options)
        out.append(HardOutcome(q.question_idx, q.country, q.truth, tuple(p_true[at: at + k]),
                               tuple(masses[at: at + k])))
        at += k
    return out


# --------------------------------------------------------------------------- bench

METRICS = {
    ("easy", "letter"): ("accuracy",),
    ("easy", "mc"): ("accuracy",),
    ("easy", "cloze"): ("accuracy", "accuracy_norm"),
    ("hard", "letter"): ("question_accuracy", "judgement_accuracy"),
}
METRIC_NOTES = {
    "accuracy": "share of questions answered right",
    "accuracy_norm": "as accuracy, log-likelihood divided by the option's length in characters",
    "question_accuracy": "share of questions with all four true/false judgements right "
                         "(CulturalBench-Hard's headline measure)",
    "judgement_accuracy": "share of single true/false judgements right (four per question, "
                          "not independent: its interval is too narrow)",
}


def check_scoring(scoring: str, split: str = "easy", chat_template: bool = True) -> str:
    """The scoring's canonical name (``loglik`` is ``cloze``), after checking it fits the split
    and the chat-template choice."""
    s = str(scoring).strip().lower()
    s = SCORING_ALIASES.get(s, s)
    if s not in SCORINGS:
        raise CultureTuneError(f"unknown scoring {scoring!r}; use letter, mc or cloze "
                               "(loglik is cloze)")
    if s != "letter" and split == "hard":
        raise CultureTuneError(f"--scoring {scoring} applies to the easy split only; the hard "
                               "split reads True/False from the next token")
    if not chat_template and s == "letter":
        raise CultureTuneError("--no-chat-template applies to --scoring mc and cloze only; "
                               "letter scoring asks inside the chat template")
    return s


def _units(outcomes: Sequence[Any], metric: str) -> list[bool]:
    if metric == "accuracy":
        return [o.correct for o in outcomes]
    if metric == "accuracy_norm":
        return [bool(o.correct_norm) for o in outcomes]
    if metric == "question_accuracy":
        return [o.correct for o in outcomes]
    if metric == "judgement_accuracy":
        return [c for o in outcomes for c in o.judgements_correct]
    raise ValueError(metric)


@dataclass(frozen=True)
class Cell:
    """One accuracy of a (country, condition, metric), and its comparison with the baseline."""

    country: str
    condition: str
    metric: str
    accuracy: Accuracy
    vs_baseline: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"country": self.country, "condition": self.condition, "metric": self.metric,
                **self.accuracy.to_dict(),
                "vs_baseline": None if self.vs_baseline is None else self.vs_baseline.to_dict()}


def _reference(split: str, questions: Sequence[AnyQuestion]) -> dict[str, Any]:
    """What trivial strategies score on these questions (to read accuracies against)."""
    if split == "easy":
        counts = {x: sum(q.answer == x for q in questions) for x in LETTERS}
        top = max(LETTERS, key=counts.__getitem__)
        return {"random": 0.25, "majority_letter": top,
                "majority_share": counts[top] / len(questions) if questions else None}
    judgements = [t for q in questions for t in q.truth]
    return {"random_question": 1 / 16, "random_judgement": 0.5,
            "all_false_judgement": (judgements.count(False) / len(judgements)
                                    if judgements else None)}


@dataclass
class BenchResult:
    """Accuracies per country (and all countries together) and condition."""

    split: str
    scoring: str
    model: str
    conditions: list[Condition]
    countries: list[str]
    metrics: tuple[str, ...]
    baseline: str | None
    cells: list[Cell]
    outcomes: dict[str, list[Any]] = field(default_factory=dict)
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_questions: dict[str, int] = field(default_factory=dict)
    chat_template: bool = True
    #: Option orders of letter scoring (``None`` where the options' order does not apply).
    orders: str | None = None

    @property
    def benchmark(self) -> str:
        return HUB_CONFIGS[self.split]

    def cell(self, country: str, condition: str, metric: str | None = None) -> Cell:
        metric = metric or self.metrics[0]
        for c in self.cells:
            if (c.country, c.condition, c.metric) == (country, condition, metric):
                return c
        raise KeyError((country, condition, metric))

    def to_dict(self, per_question: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "benchmark": self.benchmark, "split": self.split, "scoring": self.scoring,
            "orders": self.orders, "model": self.model, "baseline": self.baseline,
            "conditions": [c.to_dict() for c in self.conditions],
            "metrics": {m: METRIC_NOTES[m] for m in self.metrics},
            "interval": "95 % Wilson score interval",
            "test": "exact McNemar test (two-sided) against the baseline on the same questions; "
                    "b = baseline right and condition wrong, c = the reverse",
            "countries": [
                {"country": country, "n_questions": self.n_questions[country],
                 "reference": self.reference[country],
                 "results": [c.to_dict() for c in self.cells if c.country == country]}
                for country in [*self.countries, ALL_COUNTRIES]
            ],
        }
        if self.scoring in ("mc", "cloze"):
            d["formulation"] = SCORING_NOTES[self.scoring]
            d["chat_template"] = self.chat_template
        if per_question:
            d["outcomes"] = {k: [o.to_dict() for o in v] for k, v in self.outcomes.items()}
        return d


def run_bench(
    lm: LoadedModel,
    questions: Sequence[AnyQuestion],
    conditions: Sequence[Condition],
    split: str = "easy",
    scoring: str = "letter",
    baseline: str | None = "plain",
    batch_size: int | None = None,
    progress: Progress | None = None,
    orders: str = "shown",
    chat_template: bool = True,
) -> BenchResult:
    """Evaluate every condition on the same questions.

    Each (country, condition, metric) gets an accuracy with its Wilson interval; every condition
    other than ``baseline`` (when present) gets an exact McNemar test against it on the same
    questions. An ``All countries`` row pools every question. ``chat_template=False`` scores
    ``mc`` and ``cloze`` outside the model's chat template (lm-eval's default).
    """
    split = check_split(split)
    scoring = check_scoring(scoring, split, chat_template)
    qs = list(questions)
    if not qs:
        raise CultureTuneError("no questions to evaluate")
    kind = Question if split == "easy" else HardQuestion
    if not all(isinstance(q, kind) for q in qs):
        raise CultureTuneError(f"run_bench(split={split!r}) needs {kind.__name__} objects; load "
                               f"the questions with the same split")
    names = [c.name for c in conditions]
    if not names:
        raise CultureTuneError("no conditions to evaluate")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CultureTuneError(f"condition names must be distinct; repeated: {', '.join(dup)}")
    base = baseline if baseline in names else None
    outcomes: dict[str, list[Any]] = {}
    for cond in conditions:
        if split == "easy" and scoring != "letter":
            evaluate = evaluate_mc if scoring == "mc" else evaluate_cloze
            outcomes[cond.name] = evaluate(lm, qs, cond, chat_template, batch_size, progress)
        elif split == "easy":
            outcomes[cond.name] = evaluate_easy(lm, qs, cond, scoring, batch_size, progress,
                                                orders=orders)
        else:
            outcomes[cond.name] = evaluate_hard(lm, qs, cond, batch_size, progress)
    metrics = METRICS[(split, scoring)]
    countries = countries_in(qs)
    groups = {c: [i for i, q in enumerate(qs) if q.country == c] for c in countries}
    groups[ALL_COUNTRIES] = list(range(len(qs)))
    cells = []
    for country, idx in groups.items():
        for metric in metrics:
            units = {n: _units([outcomes[n][i] for i in idx], metric) for n in names}
            for n in names:
                vs = compare(units[base], units[n]) if base and n != base else None
                cells.append(Cell(country, n, metric, accuracy(units[n]), vs))
    return BenchResult(
        split=split, scoring=scoring, model=lm.name, conditions=list(conditions),
        chat_template=chat_template and (scoring == "letter" or lm.has_chat_template),
        countries=countries, metrics=metrics, baseline=base, cells=cells, outcomes=outcomes,
        reference={c: _reference(split, [qs[i] for i in idx]) for c, idx in groups.items()},
        n_questions={c: len(idx) for c, idx in groups.items()},
        orders=orders if (split, scoring) == ("easy", "letter") else None,
    )


# --------------------------------------------------------------------------- tables


def _fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _reference_line(split: str, ref: dict[str, Any]) -> str:
    if split == "easy":
        share = ref["majority_share"]
        return (f"random guessing 0.25; always answering {ref['majority_letter']} "
                f"{share:.2f}" if share is not None else "random guessing 0.25")
    return (f"random guessing: questions 0.06, judgements 0.50; always judging False: "
            f"judgements {ref['all_false_judgement']:.2f}, questions 0.00")


def _span(values: Sequence[float], fmt: str) -> str:
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def format_tables(result: BenchResult) -> str:
    """Readable tables: one per country and, with several, one for all countries together."""
    metrics = result.metrics
    many = len(metrics) > 1
    ns = [result.n_questions[c] for c in result.countries]
    widths = [result.cell(c, result.conditions[0].name).accuracy.half_width
              for c in result.countries]
    orders = "" if result.orders is None else (
        f" in option orders {result.orders} (answers mapped back to the dataset's option order "
        "and averaged)" if result.orders != "shown" else " in the dataset's option order")
    lines = [
        f"{result.benchmark}, {result.scoring} scoring{orders}, model {result.model}; "
        f"conditions: {', '.join(c.name for c in result.conditions)}",
        "acc: accuracy with its 95 % Wilson interval; ±: half the interval's width in points.",
    ]
    if result.scoring in ("mc", "cloze"):
        where = "inside the chat template" if result.chat_template else "no chat template"
        lines.insert(1, f"{result.scoring} ({where}): {SCORING_NOTES[result.scoring]}.")
    if result.baseline:
        lines.append(f"p: exact McNemar test against {result.baseline} on the same questions "
                     f"(b = {result.baseline} right and the condition wrong, c = the reverse).")
    if len(ns) > 1:
        lines.append(
            f"Read with care: {_span(ns, '{}')} questions per country give intervals of "
            f"±{_span([100 * w for w in widths], '{:.0f}')} points; differences inside them are "
            "not evidence, and across many countries some p < 0.05 will occur by chance."
        )
    else:
        lines.append(f"Read with care: {ns[0]} questions give an interval of "
                     f"±{100 * widths[0]:.0f} points; differences inside it are not evidence.")
    if many:
        lines += [f"{m}: {METRIC_NOTES[m]}" for m in metrics]
    name_w = max(9, *(len(c.name) for c in result.conditions))
    metric_w = max(len(m) for m in metrics)
    # With one country the "All countries" table would repeat it.
    shown = result.countries + ([ALL_COUNTRIES] if len(result.countries) > 1 else [])
    for country in shown:
        n = result.n_questions[country]
        lines += ["", f"{country}: {n} question{'s' * (n != 1)} "
                      f"({_reference_line(result.split, result.reference[country])})"]
        head = f"  {'condition':<{name_w}}  " + (f"{'metric':<{metric_w}}  " if many else "")
        head += f"{'n':>5}  {'acc':>5}  {'95 % CI':<14}  {'±':>3}"
        if result.baseline:
            head += f"  p vs {result.baseline}"
        lines.append(head)
        for cond in result.conditions:
            for metric in metrics:
                cell = result.cell(country, cond.name, metric)
                a = cell.accuracy
                acc = "   -" if a.value is None else f"{a.value:.3f}"
                row = f"  {cond.name:<{name_w}}  " + (f"{metric:<{metric_w}}  " if many else "")
                row += (f"{a.n:>5}  {acc:>5}  [{a.low:.3f}, {a.high:.3f}]  "
                        f"{100 * a.half_width:>3.0f}")
                if result.baseline:
                    vs = cell.vs_baseline
                    row += ("  -" if vs is None else
                            f"  {_fmt_p(vs.p_value)} (b {vs.b}, c {vs.c})")
                lines.append(row)
    return "\n".join(lines)
