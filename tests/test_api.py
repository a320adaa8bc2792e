"""The Python API (``import culturetune as ct``): light to import, the command line's defaults,
early errors, and the README's example run as written."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import culturetune as ct
from culturetune import api
from culturetune.core import defaults
from culturetune.core.errors import CultureTuneError
from culturetune.reading.validity import assess

ROOT = Path(__file__).parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench_easy_slice.csv"


def readme_example() -> str:
    """The first ``python`` code block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


def test_import_is_light_and_names_resolve_on_use() -> None:
    code = ("import sys, json, culturetune as ct\n"
            "light = 'torch' not in sys.modules\n"
            "ct.lookup_country('China'); ct.parse_target('PDI=80'); ct.tune; ct.survey_model\n"
            "print(json.dumps([light, 'torch' in sys.modules, sorted(dir(ct))]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    light, after, names = json.loads(out)
    assert light and not after  # functions import torch only when called
    assert set(ct.__all__) <= set(names)
    assert set(ct.__all__) - {"__version__"} == set(ct._API)
    for name, module in ct._API.items():  # each name is the object its module defines
        assert getattr(ct, name) is getattr(importlib.import_module(module), name), name
    # submodules on first use too
    assert ct.culturalbench is importlib.import_module("culturetune.culturalbench")
    assert callable(ct.culturalbench.format_tables)
    with pytest.raises(AttributeError):
        ct.no_such_name  # noqa: B018


def test_defaults_are_the_command_lines() -> None:
    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    assert default(api.survey_model, "orders") == defaults.ORDERS
    assert default(api.bench, "orders") == defaults.BENCH_ORDERS
    assert default(api.bench, "scoring") == "letter"
    config = ct.TuneConfig(target=ct.lookup_country("China"))
    assert (config.optimizer, config.budget, config.orders) == ("auto", None, defaults.ORDERS)
    assert (config.tokens, config.population, config.placement, config.subspace) == (
        5, 16, "answer", "auto")
    # auto: Adam on the whole prompt with its budget; where Adam cannot run (the said reading),
    # the derivative-free default in a 64-dimensional subspace with its own budget
    assert (defaults.OPTIMIZER, defaults.DERIVATIVE_FREE_OPTIMIZER) == ("adam", "pso")
    config.validate()
    assert (config.optimizer, config.budget, config.subspace) == (
        "adam", defaults.GRADIENT_BUDGET, None)
    said = ct.TuneConfig(target=config.target, reading="said").validate()
    assert (said.optimizer, said.budget, said.subspace) == ("pso", defaults.BUDGET, 64)
    de = ct.TuneConfig(target=config.target, optimizer="de", budget=50).validate()
    assert (de.optimizer, de.budget, de.subspace) == ("de", 50, 64)


def test_bad_settings_fail_before_the_model_is_used(tmp_path: Path) -> None:
    with pytest.raises(CultureTuneError, match="unknown tuning setting.*budgett"):
        ct.tune(None, "China", tmp_path / "r", budgett=10)
    with pytest.raises(CultureTuneError, match="say which culture"):
        ct.tune(None, None, tmp_path / "r")
    with pytest.raises(CultureTuneError, match="unknown country"):
        ct.tune(None, "Atlantis", tmp_path / "r")
    with pytest.raises(CultureTuneError, match="unknown scoring"):
        ct.bench(None, "China", scoring="guess")
    with pytest.raises(CultureTuneError, match="unknown setting.*seedz"):
        ct.run_experiment(None, out=tmp_path / "e", seedz=2)
    with pytest.raises(CultureTuneError, match="show"):
        ct.show({"not": "a result"})
    assert not (tmp_path / "r").exists() and not (tmp_path / "e").exists()


@pytest.mark.model
def test_the_readme_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURE, tmp_path / "CulturalBench-Easy.csv")
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), names)  # noqa: S102
    plain, run, shifted, scores, results = (names[k] for k in (
        "plain", "run", "shifted", "scores", "results"))
    assert plain.target.code == "CHI" and plain.orders == defaults.ORDERS
    # Adam by default: whole steps of about 2 forward-equivalents within the budget of 16
    assert run.config.optimizer == "adam" and 12 < run.evaluations <= 16
    # every check was scored, the verdict is the rule's on the run's own numbers, and saved
    v = run.validity
    assert v.verdict != "unknown" and v.checks
    again = assess(v.training, copy.deepcopy(v.checks), v.plain_mass, v.tuned_mass)
    assert (v.verdict, v.failed) == (again.verdict, again.failed)
    from culturetune.tuning.softprompt import META_FILE

    saved = json.loads((tmp_path / "runs" / "nb-china" / META_FILE).read_text())["validity"]
    assert (saved["verdict"], saved["failed"]) == (v.verdict, v.failed)
    assert (tmp_path / "runs" / "nb-china" / "adapter_model.safetensors").exists()
    assert shifted.orders == "reversed" and shifted.prompt == "runs/nb-china"
    assert [c.name for c in scores.conditions] == ["plain", "nb-china"]
    assert scores.cell("China", "nb-china").accuracy.n == 4
    assert [c["method"] for c in results["cells"]] == ["plain", "pso"]
    for name in ("results.json", "report.md", "report.html"):
        assert (tmp_path / "exp-china" / name).exists()
    out = capsys.readouterr().out
    assert "Indices (C = 50)" in out and "CulturalBench-Easy, letter scoring" in out
    # resumed from the API with a larger budget: the saved settings, more Adam steps
    more = ct.tune(names["lm"], None, "runs/nb-china", resume=True, budget=24)
    assert run.evaluations + 4 <= more.evaluations <= 24 and more.config.target.code == "CHI"
    assert more.config.optimizer == run.config.optimizer and more.config.seed == run.config.seed
