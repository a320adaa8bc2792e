"""The VSM 2013 instrument: items, formulas, constants, batch scoring, human respondents."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.items import Formula, Instrument, Item
from culturetune.instrument.vsm import (
    DIMENSIONS,
    ResponseScore,
    compute_indices,
    compute_indices_batch,
    constants_vector,
    index_matrix,
    load_instrument,
    parse_constants,
    read_responses,
    score_responses,
)

VARS = tuple(f"m{i:02d}" for i in range(1, 25))


def all_three() -> dict[str, float]:
    return dict.fromkeys(VARS, 3.0)


# --------------------------------------------------------------------------- instrument


@pytest.mark.parametrize("name", ["vsm2013", "paraphrase"])
def test_instrument_shape(name: str) -> None:
    inst = load_instrument(name)
    assert inst.name == name
    assert inst.vars == VARS
    assert [it.id for it in inst.items] == list(range(1, 25))
    assert tuple(f.index for f in inst.formulas) == DIMENSIONS
    assert all(len(it.options) == 5 for it in inst.items)
    assert inst.official is (name == "vsm2013")


def test_instrument_is_cached_and_case_insensitive() -> None:
    assert load_instrument() is load_instrument("vsm2013")
    assert load_instrument("VSM2013") == load_instrument("vsm2013")


def test_unknown_instrument_lists_valid_names() -> None:
    with pytest.raises(CultureTuneError, match="vsm2013, paraphrase"):
        load_instrument("vsm1994")


def test_paraphrase_keeps_structure_but_rewords() -> None:
    off, par = load_instrument("vsm2013"), load_instrument("paraphrase")
    assert par.formulas == off.formulas
    for a, b in zip(off.items, par.items, strict=True):
        assert (a.id, a.var, a.group, a.options) == (b.id, b.var, b.group, b.options)
        assert a.text != b.text
        assert bool(a.stem) == bool(b.stem)
        if a.stem:
            assert a.stem != b.stem


def test_paraphrase_file_is_labelled_unofficial() -> None:
    path = resources.files("culturetune").joinpath("data", "vsm2013_paraphrase.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["label"] == (
        "paraphrase written for culturetune; NOT the official VSM 2013 instrument"
    )
    assert data["official"] is False
    assert "NOT the official" in load_instrument("paraphrase").source


def test_item_lookup_and_single_questions_have_no_stem() -> None:
    inst = load_instrument()
    assert inst.item(7) is inst.item("m07")
    assert inst.item("m15").stem == ""
    assert inst.item("m01").stem.startswith("Please think of an ideal job")
    with pytest.raises(CultureTuneError):
        inst.item("m99")
    with pytest.raises(CultureTuneError, match="PDI"):
        inst.formula("XYZ")


def test_round_trips() -> None:
    inst = load_instrument()
    assert Instrument.from_dict(inst.to_dict()) == inst
    assert Item.from_dict(inst.items[3].to_dict()) == inst.items[3]
    assert Formula.from_dict(inst.formulas[2].to_dict()) == inst.formulas[2]
    with pytest.raises(CultureTuneError, match="malformed item"):
        Item.from_dict({"id": 1})


def test_instrument_validation() -> None:
    d = load_instrument().to_dict()
    d["formulas"] = d["formulas"][:5]
    with pytest.raises(CultureTuneError, match="formulas must be"):
        Instrument.from_dict(d)
    d = load_instrument().to_dict()
    d["formulas"][0]["terms"][0][1] = "m77"
    with pytest.raises(CultureTuneError, match="unknown items"):
        Instrument.from_dict(d)


# --------------------------------------------------------------------------- constants


def test_parse_constants() -> None:
    assert parse_constants(None) == dict.fromkeys(DIMENSIONS, 50.0)
    assert parse_constants(0) == dict.fromkeys(DIMENSIONS, 0.0)
    assert parse_constants(12.5) == dict.fromkeys(DIMENSIONS, 12.5)
    assert parse_constants("0") == dict.fromkeys(DIMENSIONS, 0.0)
    assert parse_constants(" 50 ") == dict.fromkeys(DIMENSIONS, 50.0)
    c = parse_constants("PDI=0,idv=10")
    assert c == {"PDI": 0.0, "IDV": 10.0, "MAS": 50.0, "UAI": 50.0, "LTO": 50.0, "IVR": 50.0}
    assert parse_constants("PDI = 0; IDV = -5") == {**c, "IDV": -5.0}
    assert parse_constants({"LTO": 1}) == {**dict.fromkeys(DIMENSIONS, 50.0), "LTO": 1.0}
    assert constants_vector("MAS=7").tolist() == [50, 50, 7, 50, 50, 50]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "empty"),
        ("abc", "expected a number"),
        ("nan", "finite"),
        ("PDI=0,XYZ=3", "unknown index 'XYZ'"),
        ("PDI=zero", "value of PDI"),
        ("PDI=1,PDI=2", "twice"),
        ("PDI=1,IDV", "not NAME=VALUE"),
        (True, "expected a number"),
        ([1, 2], "expected a number"),
        ({"FOO": 1}, "unknown index"),
    ],
)
def test_parse_constants_rejects(spec: object, match: str) -> None:
    with pytest.raises(CultureTuneError, match=match):
        parse_constants(spec)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- formulas


def test_all_threes_give_the_constants() -> None:
    assert compute_indices(all_three()) == dict.fromkeys(DIMENSIONS, 50.0)
    assert compute_indices(all_three(), 0) == dict.fromkeys(DIMENSIONS, 0.0)
    c = {"PDI": 1, "IDV": 2, "MAS": 3, "UAI": 4, "LTO": 5, "IVR": 6}
    assert compute_indices(all_three(), c) == {k: float(v) for k, v in c.items()}


def test_hand_computed_case() -> None:
    # m_k = 1 + (k mod 5): m01=2 m02=3 m03=4 m04=5 m05=1 m06=2 m07=3 m08=4 m09=5 m10=1
    # m11=2 m12=3 m13=4 m14=5 m15=1 m16=2 m17=3 m18=4 m19=5 m20=1 m21=2 m22=3 m23=4 m24=5
    means = {f"m{k:02d}": 1 + k % 5 for k in range(1, 25)}
    expected = {
        "PDI": 35 * (3 - 3) + 25 * (1 - 4),  # -75
        "IDV": 35 * (5 - 2) + 35 * (5 - 2),  # 210
        "MAS": 35 * (1 - 4) + 35 * (4 - 1),  # 0
        "UAI": 40 * (4 - 1) + 25 * (2 - 5),  # 45
        "LTO": 40 * (4 - 5) + 25 * (5 - 3),  # 10
        "IVR": 35 * (3 - 2) + 40 * (3 - 2),  # 75
    }
    assert expected == {"PDI": -75, "IDV": 210, "MAS": 0, "UAI": 45, "LTO": 10, "IVR": 75}
    assert compute_indices(means, 0) == pytest.approx(expected)
    assert compute_indices(means, "PDI=100") == pytest.approx(
        {k: v + (100 if k == "PDI" else 50) for k, v in expected.items()}
    )


def test_mas_second_coefficient_is_35() -> None:
    means = {**all_three(), "m08": 5.0, "m10": 1.0}
    assert compute_indices(means, 0)["MAS"] == pytest.approx(140.0)  # 25 would give 100


def test_each_item_moves_only_its_index() -> None:
    w, vars_ = index_matrix()
    assert vars_ == VARS
    assert w.shape == (6, 24)
    assert (np.count_nonzero(w, axis=0) == 1).all()  # each item feeds exactly one index
    assert np.allclose(w.sum(axis=1), 0)  # all-equal means give C
    assert not w.flags.writeable


def test_missing_or_bad_means() -> None:
    means = all_three()
    del means["m07"], means["m13"]
    with pytest.raises(CultureTuneError, match="m07, m13"):
        compute_indices(means)
    with pytest.raises(CultureTuneError, match="outside the answer scale"):
        compute_indices({**all_three(), "m01": 5.5})
    with pytest.raises(CultureTuneError, match="m02"):
        compute_indices({**all_three(), "m02": float("nan")})


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (3, 24), elements=st.floats(1, 5)),
    st.floats(-100, 100),
)
def test_batch_equals_scalar(means: np.ndarray, c: float) -> None:
    batch = compute_indices_batch(means, c)
    assert batch.shape == (3, 6)
    for row, out in zip(means, batch, strict=True):
        scalar = compute_indices(dict(zip(VARS, row.tolist(), strict=True)), c)
        assert out == pytest.approx([scalar[d] for d in DIMENSIONS], abs=1e-9)


def test_batch_shapes() -> None:
    assert compute_indices_batch(np.full(24, 3.0)).shape == (6,)
    assert compute_indices_batch(np.full((2, 5, 24), 3.0), 0).shape == (2, 5, 6)
    out = compute_indices_batch(np.full((4, 24), 3.0), None, "paraphrase")
    assert out[0].tolist() == [50.0] * 6
    with pytest.raises(CultureTuneError, match=r"\[\.\.\., 24\]"):
        compute_indices_batch(np.full((4, 23), 3.0))


# --------------------------------------------------------------------------- respondents


def write_csv(path, header: list[str], rows: list[list[object]], sep: str = ",") -> str:
    lines = [sep.join(header)] + [sep.join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_read_and_score_responses(tmp_path) -> None:
    header = ["respondent", *VARS, "country"]
    r1 = ["a", *([3] * 24), "X"]
    r2 = ["b", *([3] * 24), "Y"]
    r2[1 + 6] = 5  # m07 = 5
    r2[1 + 1] = None  # m02 blank
    r3 = ["c", *([None] * 24), "Z"]  # answered nothing
    path = write_csv(tmp_path / "r.csv", header, [r1, r2, r3])
    rows = read_responses(path)
    assert len(rows) == 3
    assert rows[1]["m02"] is None and rows[1]["m07"] == 5
    score = score_responses(rows, constants=0)
    assert score.n_respondents == 2
    assert score.counts["m02"] == 1 and score.counts["m07"] == 2
    assert score.means["m07"] == 4.0 and score.means["m02"] == 3.0
    assert score.indices["PDI"] == pytest.approx(35 * (4 - 3))
    assert score.indices["IDV"] == 0.0
    assert ResponseScore.from_dict(score.to_dict()) == score


def test_read_responses_semicolons_bom_and_float_integers(tmp_path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "\ufeff" + ";".join(v.upper() for v in VARS) + "\n" + ";".join(["2.0"] * 24) + "\n\n",
        encoding="utf-8",
    )
    rows = read_responses(path)
    assert rows == [dict.fromkeys(VARS, 2)]


def test_missing_columns_are_named(tmp_path) -> None:
    header = [v for v in VARS if v not in ("m05", "m17")]
    path = write_csv(tmp_path / "r.csv", header, [[1] * 22])
    with pytest.raises(CultureTuneError, match="m05, m17"):
        read_responses(path)


@pytest.mark.parametrize("bad", ["6", "0", "2.5", "abc", "-1"])
def test_bad_value_names_row_and_column(tmp_path, bad: str) -> None:
    rows = [[3] * 24 for _ in range(3)]
    rows[1][9] = bad  # second data row, m10
    path = write_csv(tmp_path / "r.csv", list(VARS), rows)
    with pytest.raises(CultureTuneError, match=r"data row 2 \(line 3 .*column m10") as e:
        read_responses(path)
    assert repr(bad) in str(e.value)


def test_empty_files_and_missing_file(tmp_path) -> None:
    with pytest.raises(CultureTuneError, match="not found"):
        read_responses(tmp_path / "nope.csv")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(CultureTuneError, match="empty"):
        read_responses(tmp_path / "e.csv")
    path = write_csv(tmp_path / "h.csv", list(VARS), [])
    with pytest.raises(CultureTuneError, match="no respondent rows"):
        read_responses(path)


def test_short_rows_count_as_blank(tmp_path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(",".join(VARS) + "\n" + ",".join(["4"] * 20) + "\n")
    assert read_responses(path)[0]["m24"] is None


def test_item_without_answers_is_an_error() -> None:
    rows = [{**dict.fromkeys(VARS, 3), "m11": None, "m20": None}] * 4
    with pytest.raises(CultureTuneError, match="no answers at all for item.*m11, m20"):
        score_responses(rows)


@pytest.mark.parametrize("bad", [0, 6, 2.5, "3", True])
def test_score_responses_validates_rows(bad: object) -> None:
    rows = [dict.fromkeys(VARS, 3), {**dict.fromkeys(VARS, 3), "m03": bad}]
    with pytest.raises(CultureTuneError, match="respondent 2, item m03"):
        score_responses(rows)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(1, 5), min_size=24, max_size=24), min_size=1, max_size=8))
def test_score_responses_matches_batch_of_means(answers: list[list[int]]) -> None:
    rows = [dict(zip(VARS, a, strict=True)) for a in answers]
    score = score_responses(rows, 0)
    means = np.mean(np.array(answers, dtype=float), axis=0)
    assert [score.indices[d] for d in DIMENSIONS] == pytest.approx(
        compute_indices_batch(means, 0).tolist(), abs=1e-9
    )
    assert score.n_respondents == len(rows)
