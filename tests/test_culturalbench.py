"""CulturalBench: loading and validating Easy/Hard data, conditions, scoring and the bench table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from culturetune import culturalbench as cb
from culturetune.core.errors import CultureTuneError
from culturetune.culturalbench import (
    ALL_COUNTRIES,
    Condition,
    EasyOutcome,
    HardOutcome,
    HardQuestion,
    Question,
    format_tables,
    load_culturalbench,
    run_bench,
)
from culturetune.reading.prompts import label_token_ids, persona_prompt

FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench_easy_slice.csv"
SHARED = Path(os.environ.get("CULTURETUNE_SHARED_DATA")
              or Path(__file__).resolve().parents[2] / "shared" / "data")
SHARED_EASY = SHARED / "culturalbench" / "CulturalBench-Easy.csv"
LMEVAL_REFERENCE = SHARED / "reference" / "lmeval-culturalbench-easy-china.json"
#: Largest gap allowed between culturetune's and lm-eval 0.4.13's per-choice log-likelihoods
#: (float32; measured 2.3e-4 nats at most over 3 × 59 × 4 choices with a question's choices as
#: one trie under the tree mask, whose attention sums in another order than lm-eval's full
#: forward; 7.6e-5 when each choice had its own copy of the context's cache). Half a nat per
#: thousand is far below the gaps between choices: answers and accuracy are asserted equal.
LMEVAL_TOL = 5e-4

# A small CulturalBench-Hard-format table: 4 rows per question, more than one TRUE allowed.
HARD_ROWS = [
    # question_idx, question, option, answer, country
    (7, "What do people in the US usually eat on Thanksgiving?", "Turkey", True, "United States"),
    (7, "What do people in the US usually eat on Thanksgiving?", "Sushi", False, "United States"),
    (7, "What do people in the US usually eat on Thanksgiving?", "Pumpkin pie", True,
     "United States"),
    (7, "What do people in the US usually eat on Thanksgiving?", "Durian", False,
     "United States"),
    (9, "Which greeting is common in Nepal?", "Namaste", True, "Nepal"),
    (9, "Which greeting is common in Nepal?", "Bowing deeply for a minute", False, "Nepal"),
    (9, "Which greeting is common in Nepal?", "Kissing three times", False, "Nepal"),
    (9, "Which greeting is common in Nepal?", "A high five", False, "Nepal"),
    (12, "What is a staple food in China?", "Rice", True, "China"),
    (12, "What is a staple food in China?", "Cheese fondue", False, "China"),
    (12, "What is a staple food in China?", "Noodles", True, "China"),
    (12, "What is a staple food in China?", "Haggis", False, "China"),
]


def hard_frame(rows: list[tuple] = HARD_ROWS, truth_as: str = "csv") -> pd.DataFrame:
    def truth(t: bool) -> object:
        return ("TRUE" if t else "FALSE") if truth_as == "csv" else t

    return pd.DataFrame(
        [{"data_idx": i, "question_idx": q, "prompt_question": text, "prompt_option": o,
          "answer": truth(a), "country": c} for i, (q, text, o, a, c) in enumerate(rows)]
    )


@pytest.fixture
def hard_csv(tmp_path: Path) -> Path:
    path = tmp_path / "hard.csv"
    hard_frame().to_csv(path, index=False)
    return path


def easy_frame() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, keep_default_na=False)


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "easy.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- loading Easy


def test_load_easy_fixture() -> None:
    qs = load_culturalbench("easy", FIXTURE)
    assert len(qs) == 12 and all(isinstance(q, Question) for q in qs)
    assert cb.countries_in(qs) == ["China", "Lebanon", "U.S.A."]  # alphabetical by default
    usa = [q for q in qs if q.code == "USA"]
    assert len(usa) == 4 and {q.dataset_country for q in usa} == {"United States"}
    assert all(q.country == "U.S.A." for q in usa)
    lebanon = [q for q in qs if q.dataset_country == "Lebanon"]
    assert len(lebanon) == 4 and all(q.country == "Lebanon" and q.code is None for q in lebanon)
    q = next(q for q in qs if q.question_idx == 303)
    assert q.answer == "B" and len(q.options) == 4 and all(q.options)
    # within a country, file order is kept
    assert [q.question_idx for q in qs if q.country == "China"] == [108, 163, 282, 303]
    assert q.to_dict()["options"] == list(q.options)


def test_country_selection_and_order() -> None:
    qs = load_culturalbench("easy", FIXTURE, countries=["United States", "lebanon"])
    assert cb.countries_in(qs) == ["U.S.A.", "Lebanon"]
    for name in ("USA", "U.S.A.", "america", "United States"):
        assert {q.country for q in load_culturalbench("easy", FIXTURE, countries=[name])} == {
            "U.S.A."}
    # the same country named twice keeps its questions once
    assert len(load_culturalbench("easy", FIXTURE, countries=["USA", "United States"])) == 4


def test_limit_per_country_in_file_order() -> None:
    qs = load_culturalbench("easy", FIXTURE, limit=2)
    assert len(qs) == 6
    assert [q.question_idx for q in qs if q.country == "Lebanon"] == [24, 35]
    with pytest.raises(CultureTuneError, match="at least 1"):
        load_culturalbench("easy", FIXTURE, limit=0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Lebanonn", "did you mean: Lebanon"),
        ("Atlantis", "unknown country 'Atlantis'"),
        ("Sweden", "no questions for Sweden"),  # in Hofstede's table, not in these data
    ],
)
def test_unknown_country_typed_by_user(name: str, message: str) -> None:
    with pytest.raises(CultureTuneError, match=message) as err:
        load_culturalbench("easy", FIXTURE, countries=[name])
    assert "countries in the data" in str(err.value)


@pytest.mark.skipif(not SHARED_EASY.exists(), reason="shared CulturalBench data not present")
def test_load_shared_easy_file() -> None:
    qs = load_culturalbench("easy", SHARED_EASY)
    assert len(qs) == 1227
    assert len(cb.countries_in(qs)) == 45
    assert {q.dataset_country for q in qs} == set(cb.CULTURALBENCH_COUNTRIES)
    nepal = load_culturalbench("easy", SHARED_EASY, countries=["Nepal"])
    assert len(nepal) == 21 and {q.country for q in nepal} == {"Nepal"}
    china = load_culturalbench("easy", SHARED_EASY.parent, countries=["China"], limit=5)
    assert len(china) == 5  # a folder holding CulturalBench-Easy.csv works too


# --------------------------------------------------------------------------- bad input


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, easy_frame().drop(columns=["country"]))
    with pytest.raises(CultureTuneError, match="missing column.*country"):
        load_culturalbench("easy", path)


def test_misnamed_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, easy_frame().rename(columns={"prompt_option_b": "option_b"}))
    with pytest.raises(CultureTuneError, match="'option_b' -> 'prompt_option_b'"):
        load_culturalbench("easy", path)


def test_bad_answer_letter(tmp_path: Path) -> None:
    df = easy_frame()
    df.loc[2, "answer"] = "E"
    df.loc[5, "answer"] = ""
    path = write_csv(tmp_path, df)
    with pytest.raises(CultureTuneError, match=r"A, B, C, D: row 3 .*'E'.*row 6") as err:
        load_culturalbench("easy", path)
    assert str(path) in str(err.value)


def test_lowercase_answer_letters_are_accepted(tmp_path: Path) -> None:
    df = easy_frame()
    df["answer"] = df["answer"].str.lower()
    qs = load_culturalbench("easy", write_csv(tmp_path, df))
    assert {q.answer for q in qs} <= set("ABCD")


def test_unknown_country_in_file(tmp_path: Path) -> None:
    df = easy_frame()
    df.loc[0, "country"] = "Atlantis"
    df.loc[1, "country"] = "Lebannon"
    with pytest.raises(CultureTuneError, match="unknown country") as err:
        load_culturalbench("easy", write_csv(tmp_path, df))
    assert "'Atlantis'" in str(err.value) and "did you mean Lebanon" in str(err.value)


def test_empty_texts_and_duplicates(tmp_path: Path) -> None:
    df = easy_frame()
    df.loc[0, "prompt_question"] = "  "
    df.loc[1, "prompt_option_c"] = ""
    with pytest.raises(CultureTuneError, match="empty prompt_question.*empty prompt_option_c"):
        load_culturalbench("easy", write_csv(tmp_path, df))
    df = easy_frame()
    df.loc[1, "question_idx"] = df.loc[0, "question_idx"]
    with pytest.raises(CultureTuneError, match="duplicate question_idx"):
        load_culturalbench("easy", write_csv(tmp_path, df, "dup.csv"))


def test_texts_like_none_stay_text(tmp_path: Path) -> None:
    df = easy_frame()
    df.loc[0, "prompt_option_d"] = "None"
    df.loc[1, "prompt_option_a"] = "NA"
    qs = load_culturalbench("easy", write_csv(tmp_path, df))
    opts = {o for q in qs for o in q.options}
    assert {"None", "NA"} <= opts


def test_wrong_split_is_named(tmp_path: Path, hard_csv: Path) -> None:
    with pytest.raises(CultureTuneError, match="--split hard"):
        load_culturalbench("easy", hard_csv)
    with pytest.raises(CultureTuneError, match="--split easy"):
        load_culturalbench("hard", FIXTURE)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CultureTuneError, match="not found"):
        load_culturalbench("easy", tmp_path / "nope.csv")
    txt = tmp_path / "data.txt"
    txt.write_text("x")
    with pytest.raises(CultureTuneError, match="unsupported file type '.txt'"):
        load_culturalbench("easy", txt)
    with pytest.raises(CultureTuneError, match="no CulturalBench-Easy"):
        load_culturalbench("easy", tmp_path)
    with pytest.raises(CultureTuneError, match="unknown CulturalBench split 'medium'"):
        load_culturalbench("medium", FIXTURE)
    header_only = tmp_path / "empty.csv"
    header_only.write_text(",".join(["data_idx", *cb.EASY_COLUMNS]) + "\n")
    with pytest.raises(CultureTuneError, match="empty.csv.*no data"):
        load_culturalbench("easy", header_only)
    from datasets import Dataset

    empty = Dataset.from_dict({c: [] for c in cb.EASY_COLUMNS})
    with pytest.raises(CultureTuneError, match="my table: no rows"):
        cb.questions_from_dataset(empty, "easy", "my table")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question_idx": 1,')
    with pytest.raises(CultureTuneError, match="could not read .*broken.json"):
        load_culturalbench("easy", broken)


# --------------------------------------------------------------------------- formats and hub


def test_json_jsonl_parquet_round_trips(tmp_path: Path) -> None:
    reference = load_culturalbench("easy", FIXTURE)
    df = easy_frame()
    (tmp_path / "easy.json").write_text(json.dumps(df.to_dict(orient="records")))
    df.to_json(tmp_path / "easy.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "easy.parquet")
    for name in ("easy.json", "easy.jsonl", "easy.parquet"):
        assert load_culturalbench("easy", tmp_path / name) == reference, name


def test_hard_round_trips(tmp_path: Path, hard_csv: Path) -> None:
    reference = load_culturalbench("hard", hard_csv)
    df = hard_frame(truth_as="bool")
    df.to_json(tmp_path / "hard.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "CulturalBench-Hard.parquet")
    assert load_culturalbench("hard", tmp_path / "hard.jsonl") == reference
    assert load_culturalbench("hard", tmp_path) == reference  # found by name in the folder


def _fake_hub(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> list[tuple]:
    """Make datasets.load_dataset answer hub requests from local files."""
    import datasets

    real = datasets.load_dataset
    calls: list[tuple] = []

    def fake(path: str, name: str | None = None, **kwargs: object) -> object:
        if path != cb.HUB_ID:
            return real(path, name, **kwargs)
        calls.append((path, name, kwargs.get("split")))
        local = files[name]
        return real("csv", data_files=str(local), split="train", na_filter=False)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    return calls


def test_hub_path_uses_the_same_conversion(monkeypatch: pytest.MonkeyPatch,
                                           hard_csv: Path) -> None:
    calls = _fake_hub(monkeypatch, {"CulturalBench-Easy": FIXTURE,
                                    "CulturalBench-Hard": hard_csv})
    easy = load_culturalbench("easy", countries=["USA"])
    assert easy == load_culturalbench("easy", FIXTURE, countries=["USA"])
    hard = load_culturalbench("hard")
    assert [q.question_idx for q in hard] == [12, 9, 7]
    assert calls == [(cb.HUB_ID, "CulturalBench-Easy", "test"),
                     (cb.HUB_ID, "CulturalBench-Hard", "test")]


def test_hub_failure_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(CultureTuneError, match="no network.*--data"):
        load_culturalbench("hard")


# --------------------------------------------------------------------------- Hard


def test_load_hard_groups_rows(hard_csv: Path) -> None:
    qs = load_culturalbench("hard", hard_csv)
    assert all(isinstance(q, HardQuestion) for q in qs)
    by_idx = {q.question_idx: q for q in qs}
    us = by_idx[7]
    assert us.country == "U.S.A." and us.dataset_country == "United States"
    assert us.options == ("Turkey", "Sushi", "Pumpkin pie", "Durian")
    assert us.truth == (True, False, True, False)
    assert by_idx[9].country == "Nepal" and by_idx[9].code is None
    assert load_culturalbench("hard", hard_csv, countries=["Nepal"]) == [by_idx[9]]


def test_hard_bad_input(tmp_path: Path) -> None:
    df = hard_frame()
    df.loc[1, "answer"] = "maybe"
    with pytest.raises(CultureTuneError, match="TRUE or FALSE.*'maybe'"):
        load_culturalbench("hard", write_csv(tmp_path, df, "a.csv"))
    with pytest.raises(CultureTuneError, match="4 rows.*question_idx 7 has 3"):
        load_culturalbench("hard", write_csv(tmp_path, hard_frame().drop(index=2), "b.csv"))
    df = hard_frame()
    df.loc[0, "prompt_question"] = "Something else?"
    with pytest.raises(CultureTuneError, match="disagree on prompt_question"):
        load_culturalbench("hard", write_csv(tmp_path, df, "c.csv"))
    with pytest.raises(CultureTuneError, match="missing column.*prompt_option"):
        load_culturalbench("hard", write_csv(tmp_path, hard_frame().drop(columns=[
            "prompt_option"]), "d.csv"))


def test_hard_question_level_logic() -> None:
    o = HardOutcome(1, "X", truth=(True, False, False, True), p_true=(0.9, 0.2, 0.4, 0.7),
                    mass=(1.0,) * 4)
    assert o.judged == (True, False, False, True) and o.correct
    o = HardOutcome(1, "X", truth=(True, False, False, True), p_true=(0.9, 0.2, 0.6, 0.7),
                    mass=(1.0,) * 4)
    assert o.judgements_correct == (True, True, False, True) and not o.correct


# --------------------------------------------------------------------------- conditions


def test_conditions() -> None:
    assert Condition.plain().system_for("China") is None
    persona = Condition.persona_prompted()
    assert persona.name == "persona" and persona.system_for("U.S.A.") == persona_prompt("U.S.A.")
    with pytest.raises(CultureTuneError, match="not both"):
        Condition("x", system="hi", persona=True)
    with pytest.raises(CultureTuneError, match="placement"):
        Condition("x", soft=SimpleNamespace(embeddings=torch.zeros(2, 4), placement="middle"))
    with pytest.raises(CultureTuneError, match="tokens, hidden"):
        Condition("x", soft=SimpleNamespace(embeddings=torch.zeros(4), placement="prefix"))
    soft = SimpleNamespace(embeddings=torch.zeros(2, 4), placement="system")
    cond = Condition("tuned", soft=soft)
    assert cond.split_at("0123456789", 4) == 4
    assert Condition("p", soft=SimpleNamespace(embeddings=torch.zeros(2, 4),
                                               placement="prefix")).split_at("abc", 1) == 0
    assert Condition.plain().split_at("abc", 1) == 3
    assert cond.to_dict()["soft_prompt"] == {"tokens": 2, "placement": "system"}
    lm = SimpleNamespace(hidden_size=8, name="m")
    with pytest.raises(CultureTuneError, match="hidden size 4"):
        cond.soft_tensor(lm)


class _SplittingTokenizer:
    """A tokenizer that splits 'B' in two and maps ' C' onto 'C'."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        table = {"A": [1], "B": [2, 3], "C": [4], "D": [5], " A": [6], " B": [7], " C": [4],
                 " D": [8]}
        return table[text]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [f"t{i}" for i in ids]


def test_label_tokens_must_be_single_and_distinct() -> None:
    lm = SimpleNamespace(tokenizer=_SplittingTokenizer())
    with pytest.raises(CultureTuneError, match="not distinct"):  # " C" == "C": not distinct
        label_token_ids(lm.tokenizer, [("A", " A"), ("C", " C")])
    assert label_token_ids(lm.tokenizer, [("A", " A"), ("D", " D")]) == [[1, 6], [5, 8]]
    # 'B' is two tokens, so only the space variant is used, for every label alike
    assert label_token_ids(lm.tokenizer, [("A", " A"), ("B", " B")]) == [[6], [7]]
    with pytest.raises(CultureTuneError, match=r"'B' -> \['t2', 't3'\]"):
        label_token_ids(lm.tokenizer, [("A",), ("B",)])


def test_scoring_checks() -> None:
    with pytest.raises(CultureTuneError, match="easy split only"):
        cb.check_scoring("loglik", "hard")
    with pytest.raises(CultureTuneError, match="unknown scoring"):
        cb.check_scoring("vibes")


def test_scoring_names_and_chat_template_choice() -> None:
    assert [cb.check_scoring(s) for s in ("letter", "MC", "cloze", "loglik")] == [
        "letter", "mc", "cloze", "cloze"]
    assert cb.check_scoring("mc", "easy", chat_template=False) == "mc"
    with pytest.raises(CultureTuneError, match="easy split only"):
        cb.check_scoring("mc", "hard")
    with pytest.raises(CultureTuneError, match="--no-chat-template applies to --scoring mc"):
        cb.check_scoring("letter", "easy", chat_template=False)
    assert set(cb.SCORING_NOTES) == set(cb.SCORINGS)
    assert {k[1] for k in cb.METRICS if k[0] == "easy"} == set(cb.SCORINGS)


def test_lmeval_contexts_without_a_chat_template() -> None:
    q = load_culturalbench("easy", FIXTURE, countries=["China"], limit=1)[0]
    a, b, c, d = q.options
    assert cb.mc_prompt(q) == f"{q.question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"
    plain = SimpleNamespace(has_chat_template=False)
    assert cb.lmeval_context(plain, "Q?") == ("Q?", 0)
    assert cb.lmeval_context(plain, "Q?", "Be brief.") == ("Be brief.\n\nQ?", 11)


# --------------------------------------------------------------------------- bench (no model)


def _scripted(monkeypatch: pytest.MonkeyPatch, right: dict[str, set[int]]) -> None:
    """Replace evaluation by outcomes that are right exactly on the given question_idx."""

    def easy(lm, questions, condition, scoring="letter", batch_size=None, progress=None,
             orders="shown"):
        out = []
        for q in questions:
            ok = q.question_idx in right[condition.name]
            pred = q.answer if ok else ("B" if q.answer == "A" else "A")
            out.append(EasyOutcome(q.question_idx, q.country, q.answer, pred, ok,
                                   probs=(0.25,) * 4, mass=0.9))
        return out

    monkeypatch.setattr(cb.results, "evaluate_easy", easy)  # where run_bench looks it up


def test_run_bench_aggregates_and_compares(monkeypatch: pytest.MonkeyPatch) -> None:
    qs = load_culturalbench("easy", FIXTURE)
    china = [q.question_idx for q in qs if q.country == "China"]
    # plain: right on all of China; persona: right on one of China and all of Lebanon
    right = {"plain": set(china),
             "persona": {china[0]} | {q.question_idx for q in qs if q.country == "Lebanon"}}
    _scripted(monkeypatch, right)
    lm = SimpleNamespace(name="fake-model")
    res = run_bench(lm, qs, [Condition.plain(), Condition.persona_prompted()])
    c = res.cell("China", "plain")
    assert (c.accuracy.k, c.accuracy.n, c.vs_baseline) == (4, 4, None)
    c = res.cell("China", "persona")
    assert (c.accuracy.k, c.vs_baseline.b, c.vs_baseline.c) == (1, 3, 0)
    assert c.vs_baseline.p_value == pytest.approx(0.25)
    c = res.cell("Lebanon", "persona")
    assert (c.vs_baseline.b, c.vs_baseline.c) == (0, 4)
    total = res.cell(ALL_COUNTRIES, "persona")
    assert (total.accuracy.k, total.accuracy.n) == (5, 12)
    assert (total.vs_baseline.b, total.vs_baseline.c) == (3, 4)
    assert res.n_questions == {"China": 4, "Lebanon": 4, "U.S.A.": 4, ALL_COUNTRIES: 12}
    assert res.reference["U.S.A."]["majority_letter"] == "A"

    d = json.loads(json.dumps(res.to_dict(per_question=True)))
    assert d["benchmark"] == "CulturalBench-Easy" and d["baseline"] == "plain"
    assert [x["country"] for x in d["countries"]] == ["China", "Lebanon", "U.S.A.",
                                                       ALL_COUNTRIES]
    assert len(d["outcomes"]["persona"]) == 12
    text = format_tables(res)
    for needle in ("China: 4 questions", "Lebanon", "U.S.A.", ALL_COUNTRIES, "Read with care",
                   "Wilson", "McNemar", "always answering A", "0.25 (b 3, c 0)"):
        assert needle in text, needle


def test_run_bench_rejects_bad_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    qs = load_culturalbench("easy", FIXTURE)
    lm = SimpleNamespace(name="fake")
    with pytest.raises(CultureTuneError, match="distinct"):
        run_bench(lm, qs, [Condition.plain(), Condition("plain")])
    with pytest.raises(CultureTuneError, match="HardQuestion"):
        run_bench(lm, qs, [Condition.plain()], split="hard")
    with pytest.raises(CultureTuneError, match="no questions"):
        run_bench(lm, [], [Condition.plain()])
    # without a plain condition there is nothing to compare against
    _scripted(monkeypatch, {"a": set(), "b": set()})
    res = run_bench(lm, qs, [Condition("a"), Condition("b")])
    assert res.baseline is None and all(c.vs_baseline is None for c in res.cells)
    assert "p vs" not in format_tables(res)


# --------------------------------------------------------------------------- with the model


@pytest.fixture(scope="module")
def easy_qs() -> list[Question]:
    return load_culturalbench("easy", FIXTURE, countries=["USA", "Lebanon"], limit=2)


@pytest.mark.model
def test_letter_probabilities(lm32, easy_qs) -> None:
    out = cb.evaluate_easy(lm32, easy_qs, Condition.plain())
    assert [o.question_idx for o in out] == [q.question_idx for q in easy_qs]
    for o in out:
        assert sum(o.probs) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 < o.mass <= 1.0
        assert o.predicted == "ABCD"[max(range(4), key=o.probs.__getitem__)]
        assert o.correct == (o.predicted == o.answer)


@pytest.mark.model
def test_batched_equals_one_at_a_time(lm32, easy_qs) -> None:
    persona = Condition.persona_prompted()
    batched = cb.evaluate_easy(lm32, easy_qs, persona, batch_size=len(easy_qs))
    for q, b in zip(easy_qs, batched, strict=True):
        (single,) = cb.evaluate_easy(lm32, [q], persona)
        assert single.probs == pytest.approx(b.probs, abs=1e-4)
        assert single.predicted == b.predicted
    ll_batched = cb.evaluate_easy(lm32, easy_qs, Condition.plain(), "loglik", batch_size=4)
    for q, b in zip(easy_qs, ll_batched, strict=True):
        (single,) = cb.evaluate_easy(lm32, [q], Condition.plain(), "loglik")
        assert single.loglik == pytest.approx(b.loglik, abs=1e-3)


@pytest.mark.model
@pytest.mark.parametrize("placement", ["prefix", "system", "answer"])
def test_zero_token_soft_prompt_equals_plain(lm32, easy_qs, placement: str) -> None:
    qs = easy_qs[:3]
    empty = Condition("empty", soft=SimpleNamespace(embeddings=torch.zeros(0, lm32.hidden_size),
                                                    placement=placement))
    for scoring, field in (("letter", "probs"), ("loglik", "loglik")):
        plain = cb.evaluate_easy(lm32, qs, Condition.plain(), scoring)
        soft = cb.evaluate_easy(lm32, qs, empty, scoring)
        for a, b in zip(plain, soft, strict=True):
            assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("placement", ["system", "answer"])
def test_loglik_matches_full_forward_with_soft_prompt(lm32, easy_qs, placement: str) -> None:
    """As lm-eval scores it, the newline ending the assistant header counts with each option;
    an answer-placed prompt still sits after that newline, right before the option."""
    tok, emb = lm32.tokenizer, lm32.model.get_input_embeddings()
    soft = torch.randn(3, lm32.hidden_size, generator=torch.Generator().manual_seed(0)) * 0.05
    cond = Condition("tuned", soft=SimpleNamespace(embeddings=soft, placement=placement))
    q = easy_qs[0]
    (out,) = cb.evaluate_easy(lm32, [q], cond, "loglik")
    text, at = lm32.render(q.question)
    head = text.rstrip()
    newline = tok.encode(text[len(head):], add_special_tokens=False)
    at = at if placement == "system" else len(head)
    pre = tok.encode(head[:at], add_special_tokens=False)
    post = tok.encode(head[at:], add_special_tokens=False)
    for option, got in zip(q.options, out.loglik, strict=True):
        ids = tok.encode(option, add_special_tokens=False)
        cont = newline + ids
        if placement == "system":  # [head | soft | head] then newline + option
            x = torch.cat([emb(torch.tensor(pre)), soft, emb(torch.tensor(post + cont))])[None]
            first = len(pre) + len(soft) + len(post)
            want_at = [first - 1 + j for j in range(len(cont))]
        else:  # [head] newline [soft] option
            x = torch.cat([emb(torch.tensor(pre + newline)), soft, emb(torch.tensor(ids))])[None]
            nl = [len(pre) - 1 + j for j in range(len(newline))]
            first = len(pre) + len(newline) + len(soft)
            want_at = nl + [first - 1 + j for j in range(len(ids))]
        logp = lm32.model(inputs_embeds=x).logits[0].float().log_softmax(-1)
        want = sum(float(logp[i, t]) for i, t in zip(want_at, cont, strict=True))
        assert got == pytest.approx(want, abs=5e-4)  # the newline alone is worth ~1e-3
    assert out.predicted_norm in "ABCD" and isinstance(out.correct_norm, bool)


@pytest.fixture(scope="module")
def lmeval_reference() -> dict:
    if not LMEVAL_REFERENCE.exists() or not SHARED_EASY.exists():
        pytest.skip(f"reference data not found under {SHARED} (set CULTURETUNE_SHARED_DATA)")
    return json.loads(LMEVAL_REFERENCE.read_text())


@pytest.mark.model
@pytest.mark.parametrize(("form", "scoring", "chat_template"), [
    ("mc", "mc", False), ("mc_chat", "mc", True), ("cloze", "cloze", True)])
def test_formulations_reproduce_lm_eval(lm32, lmeval_reference: dict, form: str, scoring: str,
                                        chat_template: bool) -> None:
    """mc, mc inside the chat template and cloze give lm-eval 0.4.13's per-choice
    log-likelihoods on China's 59 Easy questions (float32), hence its answers and accuracy."""
    qs = load_culturalbench("easy", SHARED_EASY, countries=["China"])
    evaluate = cb.evaluate_mc if scoring == "mc" else cb.evaluate_cloze
    out = {o.question_idx: o for o in evaluate(lm32, qs, Condition.plain(), chat_template)}
    ref = lmeval_reference[form]
    assert sorted(out) == sorted(r["question_idx"] for r in ref)
    gaps = [abs(a - b) for r in ref
            for a, b in zip(out[r["question_idx"]].loglik, r["loglik"], strict=True)]
    assert max(gaps) < LMEVAL_TOL
    for r in ref:
        best = max(range(4), key=r["loglik"].__getitem__)
        assert out[r["question_idx"]].predicted == "ABCD"[best]
    accuracy = sum(o.correct for o in out.values()) / len(out)
    assert accuracy == pytest.approx(lmeval_reference["acc"][form], abs=1e-12)


@pytest.mark.model
def test_hard_bench_on_fixture(lm32, hard_csv: Path) -> None:
    qs = load_culturalbench("hard", hard_csv)
    res = run_bench(lm32, qs, [Condition.plain(), Condition.persona_prompted()], split="hard")
    outcomes = res.outcomes["plain"]
    assert [len(o.p_true) for o in outcomes] == [4, 4, 4]
    assert all(0.0 < m <= 1.0 for o in outcomes for m in o.mass)
    for o in outcomes:
        assert o.correct == all(j == t for j, t in zip(o.judged, o.truth, strict=True))
    q_acc = res.cell(ALL_COUNTRIES, "plain", "question_accuracy").accuracy
    j_acc = res.cell(ALL_COUNTRIES, "plain", "judgement_accuracy").accuracy
    assert (q_acc.n, j_acc.n) == (3, 12)
    assert q_acc.k == sum(o.correct for o in outcomes)
    assert j_acc.k == sum(sum(o.judgements_correct) for o in outcomes)
    # the persona condition against the plain baseline, paired on Nepal's one question
    (nepal,) = [i for i, q in enumerate(qs) if q.country == "Nepal"]
    plain_ok, persona_ok = (bool(res.outcomes[n][nepal].correct) for n in ("plain", "persona"))
    vs = res.cell("Nepal", "persona", "question_accuracy").vs_baseline
    assert (vs.n, vs.b, vs.c) == (1, int(plain_ok and not persona_ok),
                                  int(persona_ok and not plain_ok))
    assert vs.p_value == 1.0  # one pair can never be significant
    assert res.baseline == "plain"
    assert res.cell("Nepal", "plain", "question_accuracy").vs_baseline is None
    assert "judgement_accuracy" in format_tables(res)


def test_condition_accepts_the_project_soft_prompt() -> None:
    softprompt = pytest.importorskip("culturetune.tuning.softprompt")
    sp = softprompt.SoftPrompt(embeddings=torch.zeros(3, 8), placement="prefix")
    cond = Condition("tuned", soft=sp)
    assert cond.soft_tensor(SimpleNamespace(hidden_size=8, name="m")).shape == (1, 3, 8)
    assert cond.split_at("text", 2) == 0
