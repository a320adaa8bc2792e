"""The Python API: load a model, survey it, tune a prompt, bench it and run the experiment in a
few lines, with the command line's defaults (:mod:`culturetune.core.defaults`). Each function is a
thin layer over the library (:mod:`~culturetune.reading.administer`,
:mod:`~culturetune.tuning.search`, :mod:`~culturetune.culturalbench`,
:mod:`~culturetune.experiment.grid`) that takes keyword arguments and returns the library's
result objects; :func:`show` prints any of them as the command line does. Heavy imports happen
inside the functions, so that ``import culturetune`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from culturetune.core import defaults, inputs
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import Target, lookup_country, parse_target

if TYPE_CHECKING:
    from culturetune.culturalbench import BenchResult
    from culturetune.experiment.config import ExperimentConfig
    from culturetune.model.loading import LoadedModel
    from culturetune.reading.administer import SurveyResult
    from culturetune.tuning.search import Progress, TuneResult
    from culturetune.tuning.softprompt import SoftPrompt

#: What names a prompt: a prompt folder, a :class:`~culturetune.tuning.softprompt.SoftPrompt`, or
#: the :class:`~culturetune.tuning.search.TuneResult` of :func:`tune`.
PromptLike: TypeAlias = "str | Path | SoftPrompt | TuneResult"


def load_model(
    model: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    threads: int | None = None,
) -> LoadedModel:
    """A frozen model and its tokenizer: a known model's name (``"qwen2.5-coder-0.5b"``; see
    ``culturetune models``), a hub id, a local folder, a ``.gguf`` file, or (``None``) the
    bundled SmolLM2-135M-Instruct. ``threads`` sets torch's CPU threads (default: one per
    core)."""
    from culturetune.model import loading as models

    if threads is not None:
        import torch

        if threads < 1:
            raise CultureTuneError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return models.load_model(model, device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code)


def system_prompt(persona: str | None, system: str | None, dashes: str = "") -> str | None:
    """The system prompt from ``persona`` (a country: the persona prompt) or ``system`` (the
    text), never both; ``dashes`` (``"--"`` on the command line) prefixes the names in the
    error."""
    if persona is not None and system is not None:
        raise CultureTuneError(f"{dashes}persona and {dashes}system both set a system prompt; "
                               "give only one of them")
    if persona is not None:
        from culturetune.reading.administer import persona_prompt

        return persona_prompt(lookup_country(persona).name)
    return system


def _target(country: str | Target | None) -> Target | None:
    return None if country is None else parse_target(country)


def _prompt(prompt: PromptLike) -> tuple[str, SoftPrompt]:
    """(name, prompt) of a prompt folder, a SoftPrompt or a tuning result."""
    from culturetune.tuning.softprompt import SoftPrompt

    if isinstance(prompt, SoftPrompt):
        return "prompt", prompt
    if hasattr(prompt, "prompt") and hasattr(prompt, "folder"):  # a TuneResult
        return str(prompt.folder), prompt.prompt
    return str(prompt), SoftPrompt.load(prompt)


def survey_model(
    lm: LoadedModel,
    country: str | Target | None = None,
    *,
    orders: str = defaults.ORDERS,
    calibrate: bool = False,
    instrument: str = "vsm2013",
    system: str | None = None,
    persona: str | None = None,
    prompt: PromptLike | None = None,
    constants: str | float | Mapping[str, float] | None = None,
    answers: str = "expected",
    loss: str = "l1",
    missing: str = defaults.MISSING,
    format: str = defaults.FORMAT,
) -> SurveyResult:
    """Give the model the 24 VSM 2013 items and score its answers (``culturetune survey``).

    ``country`` is anything that names a target (a country, ``"PDI=80,IDV=20"``, a file); with
    it the result has the gaps, the loss and the uniform answer's loss. ``persona`` (a country)
    or ``system`` sets the system prompt; ``prompt`` applies a tuned prompt. Answers are read in
    every option order of ``orders`` and averaged in option order; ``answers="said"`` reads what
    the model says, ``missing`` is the rule for the probability off the options. ``format``:
    ``number``, ``letter``, ``words`` or ``auto`` (the format in which the model check says the
    model answers by content, measured where not cached; else ``number``).
    """
    from culturetune.instrument.vsm import load_instrument, parse_constants
    from culturetune.reading.administer import Survey, run_survey

    system = system_prompt(persona, system)
    target = _target(country)
    name, soft = (None, None) if prompt is None else _prompt(prompt)
    if soft is not None:
        soft.check_hidden_size(lm)
    from culturetune.instrument.formats import check_format
    from culturetune.instrument.vsm import instrument_key
    from culturetune.reading.check import choose_format

    fmt = choose_format(lm, check_format(format), instrument_key(instrument)).format
    sv = Survey(lm, load_instrument(instrument), system=system, orders=orders,
                calibrate=calibrate, placement=soft.placement if soft is not None else "answer",
                format=fmt)
    return run_survey(sv, answers=answers, soft=None if soft is None else soft.embeddings,
                      constants=parse_constants(constants), target=target, loss_kind=loss,
                      prompt_name=name, missing=missing)


def tune(
    lm: LoadedModel,
    country: str | Target | None,
    out: str | Path,
    *,
    resume: bool = False,
    time_limit: float | None = None,
    progress: Callable[[Progress], None] | None = None,
    **settings: Any,
) -> TuneResult:
    """Learn a soft prompt towards ``country`` (any target) and save it in ``out``
    (``culturetune tune``); returns the run's result, with ``.prompt``, ``.final`` (the tuned
    survey), ``.baseline`` (the plain one) and ``.validity`` (the checks on views it was not
    tuned on, and the verdict).

    ``settings`` are :class:`~culturetune.tuning.config.TuneConfig` fields, with the command line's
    defaults: ``optimizer="auto"`` (Adam; PSO with ``reading="said"``), ``budget=None`` (60
    forward-equivalents for Adam, 640 for a derivative-free optimizer), ``population=16``
    (derivative-free), ``tokens=5``,
    ``placement="answer"``, ``orders="both"``, ``subspace="auto"`` (64 for a derivative-free
    optimizer, the whole matrix for ``optimizer="adam"``; ``"full"``: the whole matrix),
    ``lr=0.1``, ``temperature=1.0``, ``grad_chunk=None`` (adam),
    ``seed=0``, ``format="auto"``, ``constants``, ``loss``, ``instrument``,
    ``validate_instruments``... ``out`` must be
    new or empty; ``resume=True`` continues the run saved there (``country`` may then be
    ``None``; a larger ``budget`` extends it).
    """
    from culturetune.instrument.vsm import parse_constants
    from culturetune.tuning import search as tuning
    from culturetune.tuning.config import load_run_config

    known = [f.name for f in fields(tuning.TuneConfig) if f.name not in ("target", "model")]
    unknown = sorted(k for k in settings if k not in known)
    if unknown:
        raise CultureTuneError(f"unknown tuning setting(s) {', '.join(unknown)}; valid: "
                               f"{', '.join(known)}")
    if "subspace" in settings:
        settings["subspace"] = inputs.parse_subspace(settings["subspace"], "subspace")
    if "constants" in settings:
        settings["constants"] = parse_constants(settings["constants"])
    if resume:
        config = load_run_config(out)  # what is asked must agree with it (but budget)
        if country is not None:
            settings["target"] = _target(country)
        for key, value in settings.items():
            setattr(config, key, value)
    elif (country is None and settings.get("target_system") is None
          and settings.get("target_lead") is None):
        raise CultureTuneError("say which culture to tune for: a country or scores, or "
                               "target_system=TEXT to plant one (or resume=True to continue "
                               "the run in out)")
    elif country is not None and settings.get("target_system") is not None:
        raise CultureTuneError("give a country or target_system, not both")
    else:
        target = (_target(country) if country is not None else
                  Target("planted", None, {}, "measured when the run starts"))
        config = tuning.TuneConfig(target=target, **settings)
    return tuning.tune(lm, config, out, resume=resume, time_limit=time_limit,
                       on_progress=progress)


def bench(
    lm: LoadedModel,
    countries: str | Sequence[str] | None,
    *,
    data: str | Path | None = None,
    scoring: str = "letter",
    orders: str = defaults.BENCH_ORDERS,
    prompts: Sequence[PromptLike] = (),
    persona: bool = False,
    split: str = "easy",
    limit: int | None = None,
    chat_template: bool = True,
) -> BenchResult:
    """CulturalBench accuracy of the plain model, persona prompting (``persona=True``) and each
    tuned prompt on the same questions (``culturetune bench``), with Wilson intervals and McNemar
    tests against the plain model.

    ``countries``: one name, several, or ``None`` for every country in the data. ``data``: a
    local CSV/JSON/JSONL/Parquet copy (default: the Hugging Face hub). ``scoring``: ``letter``
    (read in the option orders of ``orders``), ``mc`` or ``cloze`` (``chat_template=False``
    scores them as plain text, as lm-evaluation-harness does by default). ``prompts``: prompt
    folders, SoftPrompts or results of :func:`tune`, each a condition named by its folder.
    """
    from culturetune.culturalbench import (
        check_scoring,
        conditions,
        load_culturalbench,
        run_bench,
    )

    check_scoring(scoring, split, chat_template)
    names = [countries] if isinstance(countries, str) else countries
    named = [_prompt(p) for p in prompts]
    for _, soft in named:
        soft.check_hidden_size(lm)
    questions = load_culturalbench(split, data, None if names is None else list(names), limit)
    return run_bench(lm, questions, conditions(persona, named), split, scoring, orders=orders,
                     chat_template=chat_template)


def run_experiment(
    lm: LoadedModel,
    config: ExperimentConfig | Mapping[str, Any] | str | Path | None = None,
    out: str | Path = "experiment",
    *,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """The reference study on ``lm`` (``culturetune experiment``): every (country, method, seed)
    cell, then ``results.json``, ``report.md``, ``report.html`` and figures in ``out``; returns
    the results. ``config`` is an :class:`~culturetune.experiment.config.ExperimentConfig`, a dict
    or a JSON file of its fields, or ``None`` for the defaults; ``settings`` override fields
    (``countries=["China"]``, ``methods=["plain", "pso"]``, ``seeds=1``, ``budget=320``,
    ``data="CulturalBench-Easy.csv"``...). Finished cells in ``out`` are kept: running again
    resumes. ``progress`` receives one line per cell."""
    from culturetune.experiment import grid as experiment
    from culturetune.experiment.folder import check_experiment
    from culturetune.report import write_report
    from culturetune.tuning import runfolder

    if isinstance(config, experiment.ExperimentConfig):
        base = config.to_dict()
    elif isinstance(config, Mapping):
        base = dict(config)
    elif config is not None:
        base = experiment.ExperimentConfig.from_file(config).to_dict()
    else:
        base = {}
    cfg = experiment.ExperimentConfig.from_dict({**base, **settings}, "experiment settings")
    with runfolder.claim(out):
        check_experiment(out)
        return experiment.run_experiment(lm, cfg, out, progress=progress, report=write_report)


def show(result: Any) -> None:
    """Print a result as the command line does: a survey (:func:`survey_model`), a tuning run
    (:func:`tune`), a CulturalBench result (:func:`bench`) or a model check
    (:func:`culturetune.check_model`)."""
    from culturetune.report import console

    kind = type(result).__name__
    if kind == "SurveyResult":
        console.print_survey(result)
    elif kind == "TuneResult":
        console.print_tune_result(result)
    elif kind == "BenchResult":
        console.print_bench(result)
    elif kind == "ModelCheck":
        console.print_model_check(result)
    else:
        raise CultureTuneError(f"show() prints survey, tuning and bench results, not {kind}")
