"""The command line: tables, JSON, exit codes and error messages (no tracebacks)."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from culturetune import cli
from culturetune.instrument.vsm import DIMENSIONS, compute_indices

if TYPE_CHECKING:
    from conftest import Cli

VARS = [f"m{i:02d}" for i in range(1, 25)]


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


def write_responses(path: Path, rows: list[dict[str, object]], extra: str | None = "id") -> Path:
    cols = ([extra] if extra else []) + VARS
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for i, r in enumerate(rows, 1):
            w.writerow({**({extra: i} if extra else {}), **r})
    return path


# --------------------------------------------------------------------------- countries


def test_countries_listing(run_cli: Cli) -> None:
    code, out, err = run_cli(["countries"])
    assert code == 0, err
    lines = out.splitlines()
    codes = [ln.split()[0] for ln in lines if ln[:3].isupper() and ln[3:5] == "  "]
    assert len(codes) == 111
    sau = next(ln for ln in lines if ln.startswith("SAU"))
    assert "95*" in sau and "36" in sau and "36*" not in sau
    assert any(ln.startswith("* estimate") and "Saudi Arabia" in ln for ln in lines)
    alb = next(ln for ln in lines if ln.startswith("ALB"))
    assert alb.count("—") == 4  # missing scores stay missing
    assert "111 countries and regions" in out


def test_countries_json(run_cli: Cli) -> None:
    code, out, _ = run_cli(["countries", "--json"])
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 111
    by_code = {r["code"]: r for r in rows}
    assert by_code["SAU"]["estimated"] == ["PDI", "IDV", "MAS", "UAI"]
    assert by_code["SAU"]["scores"]["PDI"] == 95
    assert by_code["ALB"]["scores"]["PDI"] is None
    assert by_code["CHI"]["scores"] == dict(zip(DIMENSIONS, [80, 20, 66, 30, 87, 24], strict=True))


@pytest.mark.parametrize("name", ["USA", "usa", "United States", "U.S.A.", "america"])
def test_countries_lookup_aliases(name: str, run_cli: Cli) -> None:
    code, out, _ = run_cli(["countries", name, "--json"])
    assert code == 0
    row = json.loads(out)
    assert row["code"] == "USA"
    assert row["scores"]["IDV"] == 91


def test_countries_lookup_table(run_cli: Cli) -> None:
    code, out, _ = run_cli(["countries", "saudi arabia"])
    assert code == 0
    assert "SAU" in out and "95*" in out
    assert "estimate" in out and "source:" in out


def test_countries_unknown_suggests(run_cli: Cli) -> None:
    code, out, err = run_cli(["countries", "Chna"])
    assert_clean_error(code, err, "unknown country 'Chna'", "China")
    assert out == ""


# --------------------------------------------------------------------------- score


def test_score_csv(tmp_path: Path, run_cli: Cli) -> None:
    rows = [
        {v: (i % 5) + 1 for i, v in enumerate(VARS)},
        {v: 3 for v in VARS},
        {**{v: 5 for v in VARS}, "m07": ""},  # a blank cell is a skipped answer
    ]
    path = write_responses(tmp_path / "resp.csv", rows)
    code, out, err = run_cli(["score", str(path), "--json", "--country", "China"])
    assert code == 0, err
    data = json.loads(out)
    assert data["n_respondents"] == 3
    assert data["counts"]["m07"] == 2 and data["counts"]["m01"] == 3
    expected = {v: sum(float(r[v]) for r in rows if r[v] != "") for v in VARS}
    expected = {v: s / data["counts"][v] for v, s in expected.items()}
    assert data["means"] == pytest.approx(expected)
    assert data["indices"] == pytest.approx(compute_indices(expected))
    assert data["loss"]["dimensions"] == list(DIMENSIONS)
    gaps = {d: data["indices"][d] - data["target"]["scores"][d] for d in DIMENSIONS}
    assert data["loss"]["gaps"] == pytest.approx(gaps)
    assert data["loss"]["value"] == pytest.approx(sum(abs(g) for g in gaps.values()) / 6)


def test_score_table_constant_and_partial_target(
    tmp_path: Path, run_cli: Cli
) -> None:
    path = write_responses(tmp_path / "resp.csv", [{v: 2 for v in VARS}], extra=None)
    args = ["score", str(path), "--constant", "0", "--target", "PDI=10,IVR=5", "--loss", "l2"]
    code, out, err = run_cli(args)
    assert code == 0, err
    assert "respondents 1" in out and "C = 0" in out
    assert "root mean square" in out and "over PDI, IVR" in out
    assert "not used (no target score): IDV, MAS, UAI, LTO" in out
    # all answers equal: every index is C = 0; l2 over PDI, IVR = sqrt((10² + 5²) / 2)
    assert f"{math.sqrt((100 + 25) / 2):.2f}" in out


def test_score_bad_value_names_row_and_column(
    tmp_path: Path, run_cli: Cli
) -> None:
    rows = [{v: 3 for v in VARS}, {**{v: 3 for v in VARS}, "m05": 7}]
    path = write_responses(tmp_path / "resp.csv", rows)
    code, out, err = run_cli(["score", str(path)])
    assert_clean_error(code, err, "data row 2", "column m05", "'7'")
    assert out == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["score", "does-not-exist.csv"], "not found"),
        (["score", "RESP", "--constant", "PDI=x"], "bad constants"),
        (["score", "RESP", "--country", "Atlantis"], "unknown country 'Atlantis'"),
        (["score", "RESP", "--target", "FOO=3"], "unknown dimension 'FOO'"),
    ],
)
def test_score_errors(
    args: list[str], needle: str, tmp_path: Path, run_cli: Cli
) -> None:
    path = write_responses(tmp_path / "resp.csv", [{v: 3 for v in VARS}])
    args = [str(path) if a == "RESP" else a for a in args]
    code, _, err = run_cli(args)
    assert_clean_error(code, err, needle)


def test_score_missing_columns(tmp_path: Path, run_cli: Cli) -> None:
    path = tmp_path / "resp.csv"
    path.write_text("m01,m02\n1,2\n", encoding="utf-8")
    code, _, err = run_cli(["score", str(path)])
    assert_clean_error(code, err, "m03")


# --------------------------------------------------------------------------- survey options


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--persona", "China", "--system", "Be brief."], "give only one of them"),
        (["--persona", "Chna"], "did you mean"),
        (["--country", "Chna"], "did you mean: China"),
        (["--target", "PDI=abc"], "expected a number"),
        (["--target", "missing.json"], "not found"),
        (["--constant", "XYZ=1"], "unknown index 'XYZ'"),
    ],
)
def test_survey_bad_options_fail_before_loading(
    args: list[str],
    needle: str,
    run_cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_loading(*a: object, **k: object) -> None:
        raise AssertionError("the model should not be loaded for a bad option")

    monkeypatch.setattr(cli.common, "load_lm", no_loading)
    code, out, err = run_cli(["survey", *args])
    assert_clean_error(code, err, needle)
    assert out == ""


def test_usage_errors_keep_exit_2(run_cli: Cli) -> None:
    for args in (["survey", "--answers", "maybe"], ["survey", "--loss", "l3"], ["nope"]):
        code, _, err = run_cli(args)
        assert code == 2
        assert "Traceback" not in err


def test_ctrl_c_exits_130(
    run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.survey, "country_table", interrupted)
    code, _, err = run_cli(["countries"])
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err


def test_version_and_help(run_cli: Cli) -> None:
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.startswith("culturetune ")
    code, out, _ = run_cli(["survey", "--help"])
    assert code == 0
    for opt in ("--persona", "--system", "--country", "--answers", "--reverse-options", "--json"):
        assert opt in out


def test_cli_choices_are_the_library_choices() -> None:
    """Every enum the CLI offers lists exactly the names the library accepts."""
    from culturetune.cli import options
    from culturetune.core import choices

    offered = {
        options.Answers: choices.ANSWER_MODES, options.Missing: choices.MISSING_RULES,
        options.ObjectiveName: choices.OBJECTIVES, options.ReadingName: choices.READINGS,
        options.Optimizer: choices.OPTIMIZER_CHOICES, options.Placement: choices.PLACEMENTS,
        options.Init: choices.INITS, options.Dtype: choices.DTYPES,
        options.FormatName: choices.FORMAT_CHOICES, options.Split: choices.BENCH_SPLITS,
        options.Scoring: choices.BENCH_SCORINGS,
    }
    for enum, names in offered.items():
        assert tuple(m.value for m in enum) == names, enum.__name__
    assert cli.ANSWER_MODES == choices.ANSWER_MODES


def test_library_checks_accept_exactly_the_choices() -> None:
    """The library's checks accept each listed name and refuse one that is not listed."""
    from culturetune.core import choices
    from culturetune.core.errors import CultureTuneError
    from culturetune.reading.answers import check_missing
    from culturetune.reading.prompts import check_placement

    for rule in choices.MISSING_RULES:
        assert check_missing(rule) == rule
    for placement in choices.PLACEMENTS:
        assert check_placement(placement) == placement
    with pytest.raises(CultureTuneError, match="unknown --missing"):
        check_missing("drop")
    with pytest.raises(CultureTuneError, match="unknown placement"):
        check_placement("suffix")


def test_print_survey_renders_missing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    from culturetune.instrument.targets import lookup_country
    from culturetune.reading.results import ItemResult, SurveyResult

    items = [
        ItemResult(var=v, text=f"question {v} [bold]x[/bold]", probs=[0.2] * 5, mass=0.5,
                   mean=None if v == "m01" else 3.0, generated="I'd say [3]" if v != "m01" else "?")
        for v in VARS
    ]
    result = SurveyResult(
        model="fake", instrument="vsm2013", answers="generate", placement=None, system=None,
        orders="reversed", order_list=[[4, 3, 2, 1, 0]], calibrated=False,
        constants=dict.fromkeys(DIMENSIONS, 50.0), items=items,
        indices={**dict.fromkeys(DIMENSIONS, 50.0), "IDV": None}, target=lookup_country("China"),
        loss=None, notes=["m01: unparsable answer '?'"],
    )
    cli.print_survey(result)
    out = capsys.readouterr().out
    assert "orders reversed (54321)" in out
    assert "[bold]" in out or "[bol" in out  # data is printed literally, not as rich markup
    assert "note: m01: unparsable answer '?'" in out
    idv = next(ln for ln in out.splitlines() if ln.startswith("IDV"))
    assert "—" in idv


# --------------------------------------------------------------------------- entry point


def _entry_point() -> Path:
    exe = Path(sys.executable).parent / "culturetune"
    if not exe.exists():
        pytest.skip("the culturetune console script is not installed next to this Python")
    return exe


def test_entry_point_subprocess() -> None:
    exe = _entry_point()
    ok = subprocess.run([exe, "countries", "CHN", "--json"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["code"] == "CHI"
    bad = subprocess.run([exe, "countries", "Chna"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: unknown country") and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- with the model


@pytest.mark.model
def test_survey_json_end_to_end(run_cli: Cli) -> None:
    code, out, err = run_cli(["survey", "--json", "--country", "China"])
    assert code == 0, err
    assert "loaded" in err  # status goes to stderr ...
    data = json.loads(out)  # ... so stdout is pure JSON
    assert len(data["items"]) == 24
    for it in data["items"]:
        assert sum(it["probs"]) == pytest.approx(1.0, abs=1e-6)
        assert 0.0 < it["mass"] <= 1.0
        assert it["mean"] == pytest.approx(sum(k * p for k, p in enumerate(it["probs"], 1)))
    assert data["indices"] == pytest.approx(compute_indices(data["means"]))
    assert data["target"]["code"] == "CHI"
    assert data["loss"]["kind"] == "l1" and data["loss"]["dimensions"] == list(DIMENSIONS)
    assert data["answers"] == "expected" and data["orders"] == "both"
    assert data["order_list"] == [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    assert data["uniform_loss"]["value"] == pytest.approx(26.5)  # China, C = 50
    for it in data["items"]:  # the mean is the average of the two orders' means
        assert it["mean"] == pytest.approx(sum(it["order_means"]) / 2)


@pytest.mark.model
def test_survey_table_reversed_persona(run_cli: Cli) -> None:
    args = ["survey", "--reverse-options", "--persona", "USA", "--constant", "0"]
    code, out, err = run_cli(args)
    assert code == 0, err
    assert "Traceback" not in err and "%|" not in err  # no progress bars
    assert "persona USA: You are a person from the United States" in out
    assert "orders reversed (54321)" in out and "C = 0" in out
    assert sum(ln[:3] in VARS for ln in out.splitlines()) == 24


# --------------------------------------------------------------------------- tune, chat, bench

FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench_easy_slice.csv"


@pytest.mark.model
def test_tune_then_use_the_prompt(tmp_path: Path, run_cli: Cli) -> None:
    folder = str(tmp_path / "run")
    code, out, err = run_cli(["tune", "--country", "China", "--optimizer", "pso", "--budget", "16",
                              "--population", "8", "--out", folder, "--json"])
    assert code == 0, err
    tuned = json.loads(out)
    assert tuned["evaluations"] == 16 and tuned["status"] == "done"
    final = tuned["final"]["loss"]["value"]
    # 16 evaluations need not beat the plain model (the objective is the worst view, this loss is
    # the pooled one); the prompt must be read, not ignored
    assert math.isfinite(final) and final != pytest.approx(tuned["baseline"]["loss"]["value"])

    # Running into the same folder again asks for --resume; resuming a finished run is a no-op.
    code, _, err = run_cli(["tune", "--country", "China", "--out", folder])
    assert_clean_error(code, err, "--resume")
    code, out, err = run_cli(["tune", "--resume", folder, "--json"])
    assert code == 0, err
    assert json.loads(out)["final"]["loss"]["value"] == pytest.approx(final)

    code, out, err = run_cli(["survey", "--prompt", folder, "--country", "China", "--json"])
    assert code == 0, err
    assert json.loads(out)["loss"]["value"] == pytest.approx(final, abs=1e-6)

    code, out, err = run_cli(["chat", "--prompt", folder, "--max-new-tokens", "4", "--json", "Hi"])
    assert code == 0, err
    chat = json.loads(out)
    assert set(chat) == {"message", "reply", "prompt", "system", "note"}
    assert (chat["message"], chat["prompt"], chat["system"]) == ("Hi", folder, None)
    # tuned with the default placement: the reply is read with the answer-placed prompt's note
    assert chat["note"].startswith(f"{folder} is an answer-placed prompt")
    reply = chat["reply"]
    # the decoded reply, stripped; 4 new tokens are at most 4 words (a token starts one at most)
    assert isinstance(reply, str) and reply == reply.strip() and len(reply.split()) <= 4

    code, out, err = run_cli(["bench", "--country", "China", "--data", str(FIXTURE), "--persona",
                              "--prompt", folder, "--json"])
    assert code == 0, err
    names = [c["name"] for c in json.loads(out)["conditions"]]
    assert names == ["plain", "persona", "run"]


@pytest.mark.model
def test_tune_progress_off_a_terminal_comes_as_whole_lines(
        tmp_path: Path, run_cli: Cli) -> None:
    """To a file or a pipe (here: captured), tuning says how far it is in whole lines: the
    first before the first step, the last when the budget buys no further step. With no
    --optimizer, tune takes Adam's steps (about 2 forward-equivalents each)."""
    code, out, err = run_cli(["tune", "--country", "China", "--budget", "8",
                              "--out", str(tmp_path / "run")])
    assert code == 0, err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("tuning: ")]
    assert lines[0] == "tuning: 0/8 forward-equivalents (the first step is running)", err
    last = re.match(r"tuning: step (\d+) · ([\d.]+)/8 fe · best \d", lines[-1])
    assert last and int(last[1]) >= 2 and 6 < float(last[2]) <= 8, err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["optimizer"] == "adam"


@pytest.mark.model
def test_bench_formulations(run_cli: Cli) -> None:
    base = ["bench", "--country", "China", "--data", str(FIXTURE), "--dtype", "float32"]
    code, out, err = run_cli([*base, "--scoring", "mc", "--no-chat-template", "--json"])
    assert code == 0, err
    d = json.loads(out)
    assert (d["scoring"], d["chat_template"]) == ("mc", False)
    assert "Answer:" in d["formulation"] and list(d["metrics"]) == ["accuracy"]
    code, out, err = run_cli([*base, "--scoring", "loglik"])  # the old name of cloze
    assert code == 0, err
    # stderr is no terminal here: progress comes as whole lines, never rewritten in place
    assert "\r" not in err
    done = [ln for ln in err.splitlines() if re.fullmatch(r"plain: (\d+)/\1", ln)]
    assert len(done) == 1, err
    assert "cloze scoring" in out and "cloze (inside the chat template)" in out
    assert "accuracy_norm" in out and "always answering" in out


def test_bench_chat_template_choice_needs_mc_or_cloze(
        run_cli: Cli) -> None:
    code, _, err = run_cli(["bench", "--country", "China", "--no-chat-template"])
    assert_clean_error(code, err, "--no-chat-template applies to --scoring mc and cloze")


def test_tune_and_bench_bad_input(tmp_path: Path, run_cli: Cli) -> None:
    code, _, err = run_cli(["tune"])
    assert_clean_error(code, err, "--country")
    code, _, err = run_cli(["tune", "--resume", str(tmp_path / "nothing")])
    assert_clean_error(code, err, "nothing to resume")
    code, _, err = run_cli(["tune", "--country", "China", "--subspace", "wide"])
    assert_clean_error(code, err, "--subspace")
    code, _, err = run_cli(["tune", "--country", "Chna"])
    assert_clean_error(code, err, "China")
    code, _, err = run_cli(["bench"])
    assert_clean_error(code, err, "--all-countries")
    code, _, err = run_cli(["experiment", "--config", str(tmp_path / "missing.json")])
    assert_clean_error(code, err, "missing.json")


def test_report_rewrites_a_committed_experiment(tmp_path: Path,
                                                 run_cli: Cli) -> None:
    committed = Path(__file__).parents[1] / "docs" / "results" / "quick" / "results.json"
    (tmp_path / "results.json").write_bytes(committed.read_bytes())
    code, out, err = run_cli(["report", str(tmp_path), "--json"])
    assert code == 0, err
    assert json.loads(out)["markdown"] == str(tmp_path / "report.md")
    md = (tmp_path / "report.md").read_text()
    for text in ["Validity at a glance", "CulturalBench accuracy at a glance", "Saudi Arabia"]:
        assert text in md
    assert (tmp_path / "figures" / "loss-by-method.png").stat().st_size > 1000
    code, _, err = run_cli(["report", str(tmp_path / "results.json")])  # the file itself
    assert code == 0, err


def test_report_bad_input(tmp_path: Path, run_cli: Cli) -> None:
    code, _, err = run_cli(["report", str(tmp_path)])
    assert_clean_error(code, err, "does not exist", "culturetune experiment")
    (tmp_path / "results.json").write_text("{broken")
    code, _, err = run_cli(["report", str(tmp_path)])
    assert_clean_error(code, err, "not readable JSON")
    (tmp_path / "results.json").write_text('{"cells": []}')
    code, _, err = run_cli(["report", str(tmp_path)])
    assert_clean_error(code, err, "not a culturetune experiment", "config")


@pytest.mark.model
def test_survey_with_a_broken_prompt_folder(tmp_path: Path,
                                            run_cli: Cli) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "adapter_model.safetensors").write_bytes(b"garbage")
    code, _, err = run_cli(["survey", "--prompt", str(tmp_path / "p")])
    assert_clean_error(code, err, "corrupt")


@pytest.mark.parametrize(
    ("load", "others", "noted"),
    [(1.9, 2, True),    # another job is running now
     (1.9, 0, False),   # the load average still counts a job that has just ended
     (1.9, None, True),  # no /proc/loadavg: the load average alone decides
     (0.3, 2, False)],  # a quiet minute: no note, whatever runs this instant
)
def test_busy_hint_needs_load_and_others_running_now(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    load: float, others: int | None, noted: bool,
) -> None:
    from culturetune.cli import common

    monkeypatch.setattr(common.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(common.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(common, "running_others", lambda: others)
    common.busy_hint()
    err = capsys.readouterr().err
    assert ("machine is busy" in err) is noted
    if noted:
        assert "--threads 1" in err


@pytest.mark.skipif(not Path("/proc/loadavg").exists(), reason="needs /proc/loadavg")
def test_running_others_sees_a_spinning_process() -> None:
    from culturetune.cli.common import running_others

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.5)
        assert running_others() >= 1
    finally:
        spinner.kill()
        spinner.wait()
