"""Users' instrument files: the schema, and a clear error for every kind of malformed file."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import pytest

from culturetune.core.errors import CultureTuneError
from culturetune.instrument import formats
from culturetune.instrument.vsm import instrument_key, load_instrument
from culturetune.reading.prompts import item_prompt


def _bundled() -> dict:
    text = resources.files("culturetune").joinpath("data", "vsm2013.json").read_text("utf-8")
    return json.loads(text)


def _write(tmp_path: Path, data, name: str = "mine.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_schema_describes_the_bundled_instruments() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("culturetune").joinpath(
        "data", "instrument.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    for name in ("vsm2013.json", "vsm2013_paraphrase.json"):
        data = json.loads(resources.files("culturetune").joinpath("data", name).read_text())
        jsonschema.validate(data, schema)


def test_a_translation_asks_in_its_own_language(tmp_path: Path) -> None:
    data = _bundled()
    data.update(name="vsm2013-de", official=False, language="de",
                instruction="Antworten Sie nur mit der Nummer einer Option (1-5).",
                content_free=["k. A.", ""])
    data["items"][0]["text"] = "genügend Zeit für Ihr Privat- oder Familienleben haben"
    del data["formulas"]  # optional: the VSM 2013's formulas are used
    path = _write(tmp_path, data, "vsm2013-de.json")
    inst = load_instrument(str(path))
    assert inst.name == "vsm2013-de" and inst.language == "de" and not inst.official
    assert inst.content_free == ("k. A.", "")
    assert inst.formulas == load_instrument("vsm2013").formulas
    prompt = item_prompt(inst.items[0], instruction=inst.instruction)
    assert prompt.endswith("Antworten Sie nur mit der Nummer einer Option (1-5).")
    assert "genügend Zeit" in prompt and formats.instruction("number", 5) not in prompt
    assert instrument_key(str(path)) == str(path.resolve())
    assert instrument_key("VSM2013") == "vsm2013"


def test_the_please_circle_phrase_is_left_out_of_prompts() -> None:
    item = load_instrument().item("m01")
    assert "(please circle" in item.stem
    assert "please circle" not in item_prompt(item)
    assert item_prompt(item).splitlines()[0].endswith("how important would it be to you to ...")


def _drop_item(d: dict) -> None:
    d["items"] = d["items"][:-1]


def _extra_item(d: dict) -> None:
    d["items"].append({**d["items"][0], "var": "m99", "id": 99})


def _set(path: str, value):
    def change(d: dict) -> None:
        keys = path.split(".")
        target = d
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value
    return change


def _delete(path: str):
    def change(d: dict) -> None:
        keys = path.split(".")
        target = d
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        del target[keys[-1]]
    return change


MALFORMED = [
    ("missing item", _drop_item, "formulas[3].terms[1]", "'m24'"),
    ("extra item", _extra_item, "items[24]", "extra item"),
    ("four options", _set("items.3.options", ["a", "b", "c", "d"]), "items[3].options",
     "exactly 5"),
    ("options not a list", _set("items.3.options", "a,b,c,d,e"), "items[3].options", "list"),
    ("empty option", _set("items.2.options.4", " "), "items[2].options[4]", "empty"),
    ("option a number", _set("items.2.options.0", 1), "items[2].options[0]", "expected text"),
    ("unknown formula item", _set("formulas.0.terms.0", [35, "m77", "m02"]),
     "formulas[0].terms[0]", "'m77'"),
    ("formula term shape", _set("formulas.1.terms.0", [35, "m04"]), "formulas[1].terms[0]",
     "coefficient"),
    ("coefficient as text", _set("formulas.1.terms.0", ["35", "m04", "m01"]),
     "formulas[1].terms[0]", "coefficient"),
    ("formulas out of order", _set("formulas.0.index", "IDV"), "formulas", "PDI, IDV"),
    ("five formulas", lambda d: d["formulas"].pop(), "formulas", "in that order"),
    ("no name", _delete("name"), "field name", "missing"),
    ("official as text", _set("official", "yes"), "field official", "true or false"),
    ("items not a list", _set("items", {"m01": "x"}), "field items", "non-empty list"),
    ("no items", _set("items", []), "field items", "non-empty list"),
    ("item not an object", _set("items.0", "m01"), "items[0]", "object"),
    ("item without text", _delete("items.5.text"), "items[5].text", "missing"),
    ("duplicate var", _set("items.1.var", "m01"), "items[1].var", "also item 0"),
    ("unknown item field", _set("items.0.txt", "typo"), "items[0].txt", "unknown field"),
    ("unknown top field", _set("itemz", []), "itemz", "unknown field"),
    ("item id as text", _set("items.0.id", "1"), "items[0].id", "whole number"),
    ("instruction empty", _set("instruction", ""), "instruction", "empty"),
    ("content_free empty", _set("content_free", []), "content_free", "non-empty list"),
    ("language a number", _set("language", 7), "language", "expected text"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_files_name_the_file_and_field(tmp_path: Path, case) -> None:
    _, change, field, needle = case
    data = copy.deepcopy(_bundled())
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(CultureTuneError) as exc:
        load_instrument(str(path))
    msg = str(exc.value)
    assert str(path) in msg and field in msg and needle in msg, msg


@pytest.mark.parametrize(
    "content, needle",
    [
        ("", "not valid JSON"),
        ("{\"name\": ", "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ("null", "expected a JSON object"),
        ("[" * 100_000, "not valid JSON|nested too deeply"),
    ],
    ids=["empty", "truncated", "a list", "null", "deeply nested"],
)
def test_unreadable_files(tmp_path: Path, content: str, needle: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(CultureTuneError, match=needle):
        load_instrument(str(path))


def test_not_utf8_missing_folder_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"name": "Fragebogen für"}'.encode("latin-1"))
    with pytest.raises(CultureTuneError, match="not UTF-8"):
        load_instrument(str(path))
    with pytest.raises(CultureTuneError, match="not found"):
        load_instrument(str(tmp_path / "missing.json"))
    with pytest.raises(CultureTuneError, match="is a folder"):
        load_instrument(str(tmp_path) + "/")
    with pytest.raises(CultureTuneError, match="vsm2013, paraphrase, paraphrase2 or the path"):
        load_instrument("vsm2031")
