"""The command line's option orders, calibration, instruments, uniform baseline and validity.

Input errors are checked before any model loads (``load_model`` is made to fail); the ``model``
tests run the bundled model with small budgets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from culturetune.model import loading as models

if TYPE_CHECKING:
    from conftest import Cli

FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench_easy_slice.csv"


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded although the input could be checked first")

    monkeypatch.setattr(models, "load_model", refuse)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["survey", "--orders", "both", "--reverse-options"], "conflicts with --orders both"),
        (["survey", "--orders", "sideways"], "sideways"),
        (["survey", "--calibrate", "--answers", "generate"], "does not apply to --answers"),
        (["survey", "--instrument", "missing.json"], "instrument file not found"),
        (["survey", "--instrument", "vsm2031"], "vsm2013, paraphrase, paraphrase2 or the path"),
        (["tune", "--country", "China", "--orders", "all"], "all"),
        (["tune", "--country", "China", "--validate-instrument", "nope.json"], "not found"),
        (["tune", "--country", "China", "--instrument", "{bad"], "instrument"),
        (["bench", "--country", "China", "--scoring", "cloze", "--orders", "cyclic"],
         "--orders applies to Easy letter scoring"),
        (["experiment", "--methods", "plain,pso-sideways"], "unknown method"),
        (["experiment", "--methods", "pso,pso-both"], "same method twice"),
        (["experiment", "--methods", "plain,pso", "--orders", "all"], "all"),
        (["survey", "--threads", "0"], "--threads must be at least 1"),
        (["survey", "--calibrate", "--answers", "said"], "does not apply to --answers said"),
        (["survey", "--missing", "drop"], "drop"),
        (["check-model", "--instrument", "nope.json"], "not found"),
        (["tune", "--country", "China", "--objective", "best"], "best"),
        (["tune", "--country", "China", "--min-mass", "2"], "--min-mass"),
        (["tune", "--country", "China", "--min-mass", "-0.5"], "--min-mass"),
        (["tune", "--country", "China", "--train-instrument", "nope.json"], "not found"),
        (["tune", "--country", "China", "--train-instrument", "paraphrase",
          "--validate-instrument", "paraphrase"], "cannot also be a held-out check"),
        (["tune", "--country", "China", "--reading", "said", "--calibrate"], "--reading said"),
        (["survey", "--format", "emoji"], "emoji"),
        (["check-model", "--format", "auto"], "auto"),
        (["tune", "--country", "China", "--format", "words", "--instrument", "same.json"],
         "have the same words"),
        (["survey", "--format", "words", "--instrument", "prefix.json"], "is the start of"),
        (["experiment", "--format", "words", "--validate-instrument", "same.json"],
         "have the same words"),
        (["check-model", "--format", "words", "--instrument", "long.json"], "characters"),
        (["survey", "--format", "letter", "--instrument", "german.json"],
         '"instructions": {"letter"'),
        (["tune", "--country", "China", "--target-from-system", "Disagree always."],
         "give only one"),
        (["tune", "--target-from-system", "  "], "--target-from-system is empty"),
    ],
)
def test_bad_reading_options_are_clean_errors(no_model, tmp_path, monkeypatch, run_cli: Cli, args,
                                               needle) -> None:
    monkeypatch.chdir(tmp_path)
    files = _instrument_files(tmp_path)
    code, _, err = run_cli(args)
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert needle in err, err
    assert sorted(tmp_path.iterdir()) == files  # nothing written


def _instrument_files(folder: Path) -> list[Path]:
    """Instruments the words or letter format cannot take: two options with the same words, an
    option that starts another, an option too long, a translation's own number instruction."""
    from culturetune.instrument.vsm import load_instrument

    base = load_instrument().to_dict()

    def variant(name: str, options: list[str] | None = None, **extra: object) -> Path:
        data = json.loads(json.dumps(base))
        data["name"] = name
        if options is not None:
            data["items"][3]["options"] = options
        data.update(extra)
        path = folder / f"{name}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    return sorted([
        variant("same", ["very good", "good", "Good!", "poor", "very poor"]),
        variant("prefix", ["good", "good enough", "fair", "poor", "very poor"]),
        variant("long", ["good " * 60, "b", "c", "d", "e"]),
        variant("german", instruction="Antworten Sie nur mit der Nummer (1-5)."),
    ])


def test_a_bad_instrument_file_names_the_field(no_model, tmp_path, monkeypatch,
                                                run_cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "de.json").write_text(json.dumps(
        {"name": "de", "official": False, "items": [{"var": "m01", "text": "x",
                                                      "options": ["a", "b", "c", "d"]}]}))
    code, _, err = run_cli(["survey", "--instrument", "de.json"])
    assert code == 2 and "de.json, field items[0].options" in err and "exactly 5" in err


@pytest.mark.model
def test_survey_reads_orders_and_shows_the_uniform_baseline(run_cli: Cli) -> None:
    code, out, err = run_cli(["survey", "--country", "China", "--orders", "cyclic", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["orders"] == "cyclic" and len(data["order_list"]) == 5
    assert data["uniform_loss"]["value"] == pytest.approx(26.5)
    for it in data["items"]:
        assert len(it["order_means"]) == 5
        assert it["mean"] == pytest.approx(sum(it["order_means"]) / 5)
    # the default model answers by position: each order alone reads the first listed option
    assert all(it["order_means"][0] < 2 for it in data["items"])
    code, out, err = run_cli(["survey", "--country", "China", "--calibrate"])
    assert code == 0, err
    assert "orders both (12345, 54321; answers mapped back" in out
    assert "calibrated with content-free items" in out
    assert "uniform answers (every index = C) would score 26.50" in out


@pytest.mark.model
def test_tune_prints_the_validity_table_and_verdict(tmp_path, run_cli: Cli) -> None:
    out_dir = tmp_path / "run"
    code, out, err = run_cli(["tune", "--country", "India", "--budget", "16",
                              "--out", str(out_dir)])
    assert code == 0, err
    for needle in ("plain", "uniform", "tuned", "Does it hold?", "verdict: ", "in plain words:",
                   "model check: answers by position"):
        assert needle in out, needle
    assert "warning: this model answers by position" in err  # said before tuning starts
    meta = json.loads((out_dir / "culturetune.json").read_text())
    assert [c["view"] for c in meta["validity"]["checks"]] == [
        "paraphrase2 · both", "vsm2013 · shown", "vsm2013 · reversed", "vsm2013 · both · said",
        "vsm2013 · shown · said", "vsm2013 · reversed · said"]
    # --format auto: the model answers by content in no format, so it is read in numbers; the
    # other formats are not read (by position in letters, no answer in words), and it says so
    assert meta["config"]["format"] == "number" and "format: number (--format auto" in err
    assert meta["validity"]["unread"] == {"letter": "answers by position",
                                          "words": "does not answer"}
    assert "not read in other answer formats where the model check says a reading carries none " \
           "of its answers (letter: answers by position; words: does not answer)" in " ".join(
               out.split())
    assert meta["config"]["orders"] == "both" and meta["config"]["optimizer"] == "adam"
    # the saved verdict is the one printed, with the checks that failed
    v = meta["validity"]
    failed = f"; failed: {', '.join(v['failed'])}" if v["failed"] else ""
    assert f"verdict: {v['verdict'].upper()} (training gain {v['gain']:.2f}{failed})" in " ".join(
        out.split())
    # The option mass is reported beside the losses (a prompt can win by silencing the options).
    plain_mass, tuned_mass = meta["baseline"]["option_mass"], meta["final"]["option_mass"]
    assert 0.3 < plain_mass < 0.8
    # ... and is what a survey of the saved prompt (and of no prompt) reads: the mean over items
    # of the mass on the options in each order
    for extra, mass in (["--prompt", str(out_dir)], tuned_mass), ([], plain_mass):
        code, survey_out, err = run_cli(["survey", "--country", "India", "--format", "number",
                                         "--json", *extra])
        assert code == 0, err
        data = json.loads(survey_out)
        assert data["option_mass"] == pytest.approx(mass, abs=1e-6), extra
        items = [it["mass"] for it in data["items"]]
        assert sum(items) / len(items) == pytest.approx(mass, abs=1e-6), extra
    assert f"option mass (probability on the answer options, mean over items): plain " \
           f"{plain_mass:.3f} · tuned {tuned_mass:.3f}" in out
    assert ("it would mostly not answer with an option" in out) == (tuned_mass < 0.5 * plain_mass)
    code, out, err = run_cli(["chat", "--prompt", str(out_dir), "--max-new-tokens", "4", "--json",
                              "Hello"])
    assert code == 0, err
    assert "answer-placed prompt" in err and "--placement system" in err
    assert "answer-placed" in json.loads(out)["note"]


@pytest.mark.model
def test_bench_reads_letters_in_every_cyclic_order(run_cli: Cli) -> None:
    code, out, err = run_cli(["bench", "--country", "China", "--data", str(FIXTURE), "--json",
                              "--per-question"])
    assert code == 0, err
    data = json.loads(out)
    assert data["orders"] == "cyclic"
    outcome = data["outcomes"]["plain"][0]
    assert len(outcome["order_predicted"]) == 4
    assert sum(outcome["probs"]) == pytest.approx(1.0)


@pytest.mark.model
def test_check_model_and_the_said_reading_on_the_bundled_model(run_cli: Cli) -> None:
    code, out, err = run_cli(["check-model", "--json"])
    assert code == 0, err
    checks = json.loads(out)
    assert set(checks["formats"]) == {"number", "letter", "words"}
    assert checks["answers_by_content_in"] is None
    check = checks["formats"]["number"]
    assert check["verdict"] == "answers by position" and not check["answers_by_content"]
    assert check["said"]["printed"] == check["said"]["reversed"] == [1] * 24
    assert checks["formats"]["letter"]["verdict"] == "answers by position"
    assert checks["formats"]["words"]["verdict"] == "does not answer"  # it chats
    code, out, err = run_cli(["check-model"])  # now from the cache: one table
    assert code == 0, err
    assert "answers by content in NO format" in out
    assert all(f in out for f in ("number", "letter", "words"))
    code, out, err = run_cli(["survey", "--answers", "said", "--country", "China", "--json"])
    assert code == 0, err
    said = json.loads(out)
    assert said["answered"] == 1.0
    # it says "1" in both orders: option 1 printed, option 5 reversed, so every item mean is 3
    assert all(it["order_means"] == [1.0, 5.0] for it in said["items"])
    code, out, err = run_cli(["survey", "--missing", "neutral", "--json"])
    assert code == 0, err
    neutral = json.loads(out)
    assert neutral["missing"] == "neutral"


@pytest.mark.model
def test_a_planted_target_is_the_models_own_reading_under_the_system_prompt(tmp_path,
                                                                            run_cli: Cli) -> None:
    """``--target-from-system``: the target is what the survey reads under that system prompt
    (same orders and format); the run tunes without it and keeps the target it measured."""
    from culturetune.reading.check import LOW_SYSTEM

    out_dir = tmp_path / "planted"
    code, out, err = run_cli(["tune", "--target-from-system", LOW_SYSTEM, "--format", "number",
                              "--budget", "8", "--population", "8", "--out", str(out_dir),
                              "--json"])
    assert code == 0, err
    result = json.loads(out)
    target = result["config"]["target"]
    assert target["name"] == "planted" and LOW_SYSTEM in target["source"]
    assert result["config"]["target_system"] == LOW_SYSTEM
    code, out, err = run_cli(["survey", "--system", LOW_SYSTEM, "--format", "number", "--json"])
    assert code == 0, err
    read = json.loads(out)["indices"]
    assert target["scores"] == pytest.approx(read, abs=1e-6)
    assert result["baseline"]["loss"]["value"] > 0  # the plain model is not at the target
    saved = json.loads((out_dir / "run.json").read_text())["config"]["target"]
    assert saved["scores"] == target["scores"]
