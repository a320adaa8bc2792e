"""Country reference scores, look-up, custom targets and the loss."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import (
    Loss,
    Target,
    country_table,
    lookup_country,
    loss,
    loss_batch,
    parse_target,
)
from culturetune.instrument.vsm import DIMENSIONS

# The 45 countries of CulturalBench v1 (Easy and Hard); Lebanon and Nepal are not in the table.
# fmt: off
CULTURALBENCH = {
    "China": "CHI", "South Africa": "SAF", "Japan": "JPN", "Mexico": "MEX", "India": "IND",
    "Philippines": "PHI", "South Korea": "KOR", "Spain": "SPA", "Turkey": "TUR", "Iran": "IRA",
    "Italy": "ITA", "Hong Kong": "HOK", "Argentina": "ARG", "Germany": "GER", "Russia": "RUS",
    "Vietnam": "VIE", "Thailand": "THA", "Indonesia": "IDO", "Netherlands": "NET",
    "United Kingdom": "GBR", "Bangladesh": "BAN", "Czech Republic": "CZE", "Brazil": "BRA",
    "Poland": "POL", "Singapore": "SIN", "Nigeria": "NIG", "Chile": "CHL", "Taiwan": "TAI",
    "Ukraine": "UKR", "Egypt": "EGY", "United States": "USA", "Peru": "PER", "Morocco": "MOR",
    "Zimbabwe": "ZIM", "Saudi Arabia": "SAU", "Romania": "ROM", "Australia": "AUL",
    "France": "FRA", "Pakistan": "PAK", "Israel": "ISR", "Malaysia": "MAL",
    "New Zealand": "NZL", "Canada": "CAN",
}
# fmt: on
NOT_IN_TABLE = ("Lebanon", "Nepal")


def scores(pdi, idv, mas, uai, lto, ivr) -> dict[str, float | None]:
    return dict(zip(DIMENSIONS, (pdi, idv, mas, uai, lto, ivr), strict=True))


# --------------------------------------------------------------------------- table


def test_country_table() -> None:
    table = country_table()
    assert len(table) == 111
    assert len({t.code for t in table}) == 111
    by_code = {t.code: t for t in table}
    assert by_code["USA"].scores == scores(40, 91, 62, 46, 26, 68)
    assert by_code["CHI"].scores == scores(80, 20, 66, 30, 87, 24)
    assert by_code["IND"].scores == scores(77, 48, 56, 40, 51, 26)
    assert by_code["ARA"].scores == scores(80, 38, 53, 68, 23, 34)
    assert by_code["ARM"].scores == scores(None, None, None, None, 61, None)
    assert by_code["ARM"].dimensions == ("LTO",)
    assert by_code["USA"].estimated == ()


def test_saudi_arabia_is_merged_with_estimates() -> None:
    sau = lookup_country("Saudi Arabia")
    assert sau.code == "SAU"
    assert sau.scores == scores(95, 25, 60, 80, 36, 52)
    assert sau.estimated == ("PDI", "IDV", "MAS", "UAI")
    assert "Hofstede Insights" in sau.source and "estimate" in sau.source
    assert sau.dimensions == DIMENSIONS


def test_country_table_returns_fresh_objects() -> None:
    country_table()[0].scores["PDI"] = -1.0
    assert country_table()[0].scores["PDI"] == 64.0


# --------------------------------------------------------------------------- look-up


@pytest.mark.parametrize(
    "name, code",
    [
        ("China", "CHI"),
        ("china", "CHI"),
        ("  CHINA ", "CHI"),
        ("PRC", "CHI"),
        ("CHI", "CHI"),
        ("chn", "CHI"),
        ("USA", "USA"),
        ("US", "USA"),
        ("u.s.a.", "USA"),
        ("United States", "USA"),
        ("United States of America", "USA"),
        ("America", "USA"),
        ("UK", "GBR"),
        ("United Kingdom", "GBR"),
        ("Great Britain", "GBR"),
        ("britain", "GBR"),
        ("GBR", "GBR"),
        ("South Korea", "KOR"),
        ("Korea", "KOR"),
        ("Korea, South", "KOR"),
        ("korea   south", "KOR"),
        ("Czech Rep", "CZE"),
        ("Czechia", "CZE"),
        ("Trinidad & Tobago", "TRI"),
        ("the Netherlands", "NET"),
        ("Türkiye", "TUR"),
        ("Viet Nam", "VIE"),
        ("KSA", "SAU"),
        ("india", "IND"),
        ("Chile", "CHL"),
        ("Arab countries", "ARA"),
        ("El Salvador", "SAL"),
        ("Slovenia", "SLV"),
    ],
)
def test_lookup(name: str, code: str) -> None:
    assert lookup_country(name).code == code


@pytest.mark.parametrize("name, code", sorted(CULTURALBENCH.items()))
def test_culturalbench_countries_resolve(name: str, code: str) -> None:
    assert lookup_country(name).code == code


@pytest.mark.parametrize("name", NOT_IN_TABLE)
def test_culturalbench_countries_not_in_table(name: str) -> None:
    with pytest.raises(CultureTuneError, match=f"unknown country '{name}'"):
        lookup_country(name)


def test_unknown_country_suggests() -> None:
    with pytest.raises(CultureTuneError, match=r"unknown country 'Chna'; did you mean: China") as e:
        lookup_country("Chna")
    assert "PDI=80" in str(e.value)
    with pytest.raises(CultureTuneError, match="did you mean: Switzerland"):
        lookup_country("Swizerland")
    with pytest.raises(CultureTuneError, match="unknown country 'Qqqqqq'; give"):
        lookup_country("Qqqqqq")


# --------------------------------------------------------------------------- Target


def test_target_normalises_and_round_trips() -> None:
    t = Target(name="x", code=None, scores={"pdi": 80, "IVR": "12.5"}, source="s")
    assert t.scores == scores(80, None, None, None, None, 12.5)
    assert t.dimensions == ("PDI", "IVR")
    assert t.values == {"PDI": 80.0, "IVR": 12.5}
    assert Target.from_dict(t.to_dict()) == t
    sau = lookup_country("SAU")
    assert Target.from_dict(json.loads(json.dumps(sau.to_dict()))) == sau


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scores": {"XYZ": 1}}, "unknown dimension 'XYZ'"),
        ({"scores": {"PDI": "high"}}, "value of PDI"),
        ({"scores": {"PDI": math.inf}}, "finite"),
        ({"scores": {"PDI": 1}, "estimated": ("FOO",)}, "estimated"),
    ],
)
def test_target_rejects(kwargs: dict, match: str) -> None:
    with pytest.raises(CultureTuneError, match=match):
        Target(name="x", code=None, source="s", **kwargs)


def test_target_from_dict_rejects() -> None:
    with pytest.raises(CultureTuneError, match="needs 'name' and 'scores'"):
        Target.from_dict({"scores": {}})


# --------------------------------------------------------------------------- parse_target


def test_parse_target_country_and_spec() -> None:
    assert parse_target("India").code == "IND"
    t = parse_target("PDI=80, idv = 20;UAI=1.5")
    assert t.name == "custom" and t.code is None
    assert t.values == {"PDI": 80.0, "IDV": 20.0, "UAI": 1.5}
    assert parse_target(t) is t


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "empty target"),
        ("PDI=80,XYZ=3", "unknown dimension 'XYZ'"),
        ("PDI=high", "value of PDI"),
        ("PDI=", "PDI has no value"),
        ("PDI=1,PDI=2", "twice"),
        ("PDI=1,IDV", "not DIMENSION=VALUE"),
        ("Atlantis", "unknown country 'Atlantis'"),
    ],
)
def test_parse_target_rejects(spec: str, match: str) -> None:
    with pytest.raises(CultureTuneError, match=match):
        parse_target(spec)


def test_parse_target_json(tmp_path) -> None:
    flat = tmp_path / "mine.json"
    flat.write_text(json.dumps({"PDI": 80, "idv": 20, "MAS": None}))
    t = parse_target(str(flat))
    assert t.name == "mine" and t.values == {"PDI": 80.0, "IDV": 20.0}
    assert str(flat) in t.source
    full = tmp_path / "full.json"
    full.write_text(json.dumps({"name": "Atlantis", "scores": {"LTO": 70}, "source": "myth"}))
    t = parse_target(str(full))
    assert (t.name, t.values, t.source) == ("Atlantis", {"LTO": 70.0}, "myth")
    round_trip = tmp_path / "rt.json"
    round_trip.write_text(json.dumps(lookup_country("SAU").to_dict()))
    assert parse_target(str(round_trip)) == lookup_country("SAU")


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ("[80, 20]", "expected an object"),
        ('{"PDI": 80, "FOO": 1}', "unknown dimension 'FOO'"),
        ('{"PDI": "x"}', "value of PDI"),
        ('{"name": "a", "scores": [1]}', "'scores' must be an object"),
        ('{"name": "a", "scores": {"PDI": 1}, "colour": 3}', "unknown fields"),
        ('{"PDI": null}', "has no scores"),
        ("{}", "has no scores"),
    ],
)
def test_parse_target_json_rejects(tmp_path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CultureTuneError, match=match) as e:
        parse_target(str(path))
    if "has no scores" not in match:
        assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("PDI,IDV,MAS\n80,20,\n", {"PDI": 80.0, "IDV": 20.0}),
        ("pdi;ivr\n80;3\n", {"PDI": 80.0, "IVR": 3.0}),
        ("dimension,value\nPDI,80\nLTO,12\n", {"PDI": 80.0, "LTO": 12.0}),
        ("PDI,80\nLTO,12\n\n", {"PDI": 80.0, "LTO": 12.0}),
    ],
)
def test_parse_target_csv(tmp_path, content: str, expected: dict) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    t = parse_target(str(path))
    assert t.values == expected and t.name == "t"


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("PDI,IDV\n", "found 0 value rows"),
        ("PDI,IDV\n1,2\n3,4\n", "found 2 value rows"),
        ("PDI,IDV\n1\n", "1 cells but the header has 2"),
        ("PDI,IDV\n1,x\n", "value of IDV"),
        ("dimension,value\nFOO,1\n", "unknown dimension 'FOO'"),
        ("dimension,value\nPDI,1\nPDI,2\n", "twice"),
        ("a,b,c\n1,2,3\n", "expected either a header row"),
        ("PDI,IDV\n,\n", "has no scores"),
    ],
)
def test_parse_target_csv_rejects(tmp_path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CultureTuneError, match=match):
        parse_target(str(path))


def test_parse_target_missing_or_unsupported_file(tmp_path) -> None:
    with pytest.raises(CultureTuneError, match="target file not found"):
        parse_target(str(tmp_path / "nope.json"))
    other = tmp_path / "scores.txt"
    other.write_text("PDI=1")
    with pytest.raises(CultureTuneError, match="unsupported file type '.txt'"):
        parse_target(str(other))


# --------------------------------------------------------------------------- loss


def test_loss_l1_l2_by_hand() -> None:
    target = Target(name="t", code=None, scores={"PDI": 80, "IDV": 20}, source="s")
    indices = {"PDI": 70.0, "IDV": 50.0, "MAS": 999.0, "UAI": 0, "LTO": 0, "IVR": 0}
    l1 = loss(indices, target)
    assert isinstance(l1, Loss)
    assert l1.value == pytest.approx((10 + 30) / 2)
    assert l1.kind == "l1" and l1.dimensions == ("PDI", "IDV")
    assert l1.gaps == {"PDI": -10.0, "IDV": 30.0}
    l2 = loss(indices, target, kind="L2")
    assert l2.value == pytest.approx(math.sqrt((100 + 900) / 2))
    assert Loss.from_dict(l2.to_dict()) == l2


def test_loss_on_country_skips_missing_dimensions() -> None:
    arm = lookup_country("Armenia")  # only LTO = 61
    out = loss(dict.fromkeys(DIMENSIONS, 50.0), arm)
    assert out.dimensions == ("LTO",) and out.value == pytest.approx(11.0)


def test_loss_rejects() -> None:
    target = parse_target("PDI=1,IDV=2")
    with pytest.raises(CultureTuneError, match="unknown loss 'l3'"):
        loss(dict.fromkeys(DIMENSIONS, 0.0), target, kind="l3")
    with pytest.raises(CultureTuneError, match="lack IDV"):
        loss({"PDI": 0.0}, target)
    empty = Target(name="e", code=None, scores={}, source="s")
    with pytest.raises(CultureTuneError, match="no scores"):
        loss(dict.fromkeys(DIMENSIONS, 0.0), empty)
    with pytest.raises(CultureTuneError, match="unknown loss"):
        loss_batch(np.zeros((2, 6)), target, "huber")
    with pytest.raises(CultureTuneError, match=r"\[\.\.\., 6\]"):
        loss_batch(np.zeros((2, 5)), target)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (4, 6), elements=st.floats(-200, 300)),
    st.sampled_from(["China", "USA", "Saudi Arabia", "Armenia", "PDI=10,MAS=90"]),
    st.sampled_from(["l1", "l2"]),
)
def test_loss_batch_equals_scalar(indices: np.ndarray, spec: str, kind: str) -> None:
    target = parse_target(spec)
    batch = loss_batch(indices, target, kind)
    assert batch.shape == (4,)
    for row, value in zip(indices, batch, strict=True):
        scalar = loss(dict(zip(DIMENSIONS, row.tolist(), strict=True)), target, kind)
        assert value == pytest.approx(scalar.value, abs=1e-9)
