"""Hostile and careless use of every command (issue 11).

Each table case runs the CLI in a sandbox folder (the working directory) and asserts: exit status
2 (130 for an interrupt), one ``error: ...`` line, no traceback, no file in the sandbox created,
changed or removed, and (for the input checks, which come first) that no model was loaded:
``culturetune.model.loading.load_model`` raises if anything calls it.

The ``model`` tests at the end need the bundled model: limits that depend on it (context length,
memory), extending a run with ``--resume --budget``, two processes on one folder, and SIGINT to
a real ``culturetune tune``.

A full disk (issue 19), by fault injection (:class:`FullDisk`), at every write point:

=============================  =========================================================
write point                    test
=============================  =========================================================
run.json (start and end)       test_tune_on_a_full_disk_at_every_write_then_resume_...
checkpoint.safetensors         (same; ``--resume`` ends with the uninterrupted prompt)
history.csv                    (same)
adapter_model.safetensors,     (same; the prompt's files are put in place all or none)
adapter_config.json,
culturetune.json
cells/<code>/<method>.json     test_experiment_on_a_full_disk_at_every_write_then_goes_on
results.json, report.md,       (same)
report.html, figures/*.png
report.md, report.html, each   test_report_on_a_full_disk_changes_nothing_then_writes_all
figure (``report``)            (the REPORT_FAULTS table)
the dequantized model cache    test_model_cache_on_a_full_disk_leaves_no_folder
=============================  =========================================================

The causes (ENOSPC, EDQUOT, EROFS, EACCES) and the file modes under two umasks are in
``test_files.py``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from culturetune import cli
from culturetune.cli import main
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import lookup_country
from culturetune.model import loading as models
from culturetune.tuning import runfolder
from culturetune.tuning.checkpoint import history_csv
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.search import Interrupted

if TYPE_CHECKING:
    from conftest import Cli

HIDDEN = 576
FIXTURE = Path(__file__).parent / "fixtures" / "culturalbench_easy_slice.csv"
RESULTS = Path(__file__).parents[1] / "docs" / "results" / "quick" / "results.json"
VARS = [f"m{i:02d}" for i in range(1, 25)]
LONG = "x" * 300  # longer than any file name may be
NOISE = bytes(random.Random(7).randrange(256) for _ in range(3000))

Builder = Callable[[Path, list], None]


# --------------------------------------------------------------------------- sandbox builders


def text(rel: str, content: str | bytes) -> Builder:
    def build(root: Path, cleanup: list) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return build


def folder(rel: str) -> Builder:
    return lambda root, cleanup: (root / rel).mkdir(parents=True, exist_ok=True)


def responses(rel: str = "resp.csv", cell: str = "3", rows: int = 2) -> Builder:
    body = ",".join(VARS) + "\n" + "\n".join(",".join([cell] * 24) for _ in range(rows)) + "\n"
    return text(rel, body)


def prompt(rel: str = "p", shape: tuple[int, ...] = (5, HIDDEN), fill: float | None = None,
           meta: object = "default", raw: bytes | None = None) -> Builder:
    """A prompt folder: ``adapter_model.safetensors`` (or ``raw`` bytes) and culturetune.json."""

    def build(root: Path, cleanup: list) -> None:
        import torch
        from safetensors.torch import save_file

        path = root / rel
        path.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            (path / "adapter_model.safetensors").write_bytes(raw)
        else:
            tensor = torch.randn(*shape)
            if fill is not None:
                tensor.view(-1)[3] = fill
            save_file({"prompt_embeddings": tensor}, str(path / "adapter_model.safetensors"))
        if meta == "default":
            doc: object = {"placement": "answer", "model": "smollm2-135m-instruct",
                           "tokens": shape[0], "hidden": shape[-1]}
        else:
            doc = meta
        if doc is not None:
            (path / "culturetune.json").write_text(json.dumps(doc))

    return build


def run_config(**overrides: object) -> dict:
    cfg = TuneConfig(target=lookup_country("China"), model="smollm2-135m-instruct", budget=32,
                     optimizer="pso", population=8, seed=3).to_dict()
    cfg.update(overrides)
    return cfg


def run(rel: str = "run", *, run_json: object = None, history: str | None = None,
        checkpoint: bytes | None = None, steps: tuple[int, ...] = (8, 8)) -> Builder:
    """A tuning run folder as an interrupted ``tune`` leaves it (made without the model)."""

    def build(root: Path, cleanup: list) -> None:
        from safetensors.numpy import save_file

        path = root / rel
        path.mkdir(parents=True, exist_ok=True)
        doc = {"config": run_config(), "status": "interrupted", "evaluations": 16}
        (path / "run.json").write_text(json.dumps(doc if run_json is None else run_json))
        n = sum(abs(s) for s in steps)
        rng = np.random.default_rng(0)
        z, loss = rng.standard_normal((n, 64)), rng.random(n) + 5
        if checkpoint is not None:
            (path / "checkpoint.safetensors").write_bytes(checkpoint)
        else:
            save_file({"z": z, "loss": loss, "steps": np.array(steps, dtype=np.int64)},
                      str(path / "checkpoint.safetensors"))
        rows = runfolder.history_rows(loss, [abs(s) for s in steps])
        for i, r in enumerate(rows):
            r["seconds"] = float(i + 1)
        (path / "history.csv").write_text(history_csv(rows) if history is None else history)

    return build


def held(rel: str) -> Builder:
    """``rel`` locked by another process for the duration of the case."""

    def build(root: Path, cleanup: list) -> None:
        code = ("import sys, time\nfrom culturetune.tuning import runfolder\n"
                "hold = runfolder.claim(sys.argv[1])\nhold.__enter__()\n"
                "print('held', flush=True)\ntime.sleep(300)\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(root / rel)],
                                stdout=subprocess.PIPE, text=True)
        cleanup.append(lambda: (proc.kill(), proc.wait()))
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"

    return build


def gguf(rel: str, nbytes: int | None = None, content: bytes | None = None) -> Builder:
    def build(root: Path, cleanup: list) -> None:
        if content is not None:
            (root / rel).write_bytes(content)
            return
        with models.bundled_gguf().open("rb") as fh:
            (root / rel).write_bytes(fh.read(nbytes))

    return build


def results(mutate: Callable[[dict], None], rel: str = "exp") -> Builder:
    def build(root: Path, cleanup: list) -> None:
        data = json.loads(RESULTS.read_text())
        mutate(data)
        (root / rel).mkdir(parents=True, exist_ok=True)
        (root / rel / "results.json").write_text(json.dumps(data))

    return build


def no_ray() -> Builder:
    """Ray not installed: ``import ray`` fails for the duration of the case."""

    def build(root: Path, cleanup: list) -> None:
        saved = sys.modules.get("ray")
        sys.modules["ray"] = None  # type: ignore[assignment]
        cleanup.append(lambda: sys.modules.update(ray=saved) if saved is not None
                       else sys.modules.pop("ray", None))

    return build


def _deep(n: int) -> str:
    return "[" * n + "]" * n


# --------------------------------------------------------------------------- the table

# (id, arguments, text the error must contain, builders)
CASES: list[tuple[str, list[str], str, tuple[Builder, ...]]] = [
    # --- usage
    ("no-such-command", ["nope"], "No such command", ()),
    ("misspelt-option", ["tune", "--budgte", "5"], "No such option", ()),
    ("option-of-another-command", ["survey", "--budget", "5"], "No such option", ()),
    ("bad-choice", ["survey", "--answers", "maybe"], "--answers", ()),
    ("tokens-not-a-number", ["tune", "--country", "China", "--tokens", "1e5"], "--tokens", ()),
    # --- countries
    ("countries-unknown", ["countries", "Chna"], "did you mean", ()),
    ("countries-empty", ["countries", ""], "unknown country", ()),
    ("countries-long", ["countries", LONG], "unknown country", ()),
    ("countries-extra-arg", ["countries", "China", "Japan"], "unexpected extra argument", ()),
    # --- score: the responses file
    ("score-missing", ["score", "missing.csv"], "not found", ()),
    ("score-folder", ["score", "d"], "is a folder", (folder("d"),)),
    ("score-binary", ["score", "b.csv"], "binary", (text("b.csv", bytes(range(256)) * 4),)),
    ("score-latin1", ["score", "l.csv"], "not UTF-8", (text("l.csv", "m01\n\xe9\n".encode(
        "latin-1")),)),
    ("score-empty", ["score", "e.csv"], "empty", (text("e.csv", ""),)),
    ("score-header-only", ["score", "h.csv"], "no respondent rows",
     (text("h.csv", ",".join(VARS) + "\n"),)),
    ("score-answer-6", ["score", "resp.csv"], "data row 1", (responses(cell="6"),)),
    ("score-answer-nan", ["score", "resp.csv"], "'nan' is not an answer",
     (responses(cell="nan"),)),
    ("score-answer-huge", ["score", "resp.csv"], "is not an answer", (responses(cell="1e308"),)),
    ("score-answer-inf", ["score", "resp.csv"], "is not an answer", (responses(cell="inf"),)),
    ("score-giant-field", ["score", "g.csv"], "not a readable CSV",
     (text("g.csv", ",".join(VARS) + "\n\"" + "1" * 200_000 + "\"\n"),)),
    ("score-long-name", ["score", LONG + ".csv"], "file name too long", ()),
    ("score-missing-columns", ["score", "c.csv"], "lacks the columns",
     (text("c.csv", "a,b\n1,2\n"),)),
    ("score-constant-nan", ["score", "resp.csv", "--constant", "nan"], "finite",
     (responses(),)),
    ("score-constant-huge", ["score", "resp.csv", "--constant", "1e300"], "outside",
     (responses(),)),
    ("score-constant-twice", ["score", "resp.csv", "--constant", "PDI=1,PDI=2"], "twice",
     (responses(),)),
    ("score-target-huge", ["score", "resp.csv", "--country", "PDI=1e300"], "outside",
     (responses(),)),
    ("score-target-negative", ["score", "resp.csv", "--country", "IDV=-1e6"], "outside",
     (responses(),)),
    ("score-target-empty", ["score", "resp.csv", "--country", ""], "empty target",
     (responses(),)),
    # --- targets (read before any model)
    ("target-json-duplicate", ["survey", "--target", "t.json"], "appears twice",
     (text("t.json", '{"PDI": 1, "PDI": 2}'),)),
    ("target-json-scores-duplicate", ["survey", "--target", "t.json"], "appears twice",
     (text("t.json", '{"name": "a", "scores": {"IDV": 1, "IDV": 9}}'),)),
    ("target-json-case-duplicate", ["survey", "--target", "t.json"], "twice",
     (text("t.json", '{"PDI": 1, "pdi": 2}'),)),
    ("target-csv-duplicate-header", ["survey", "--target", "t.csv"], "given twice",
     (text("t.csv", "PDI,PDI\n1,2\n"),)),
    ("target-json-deep", ["survey", "--target", "t.json"], "nested too deeply",
     (text("t.json", _deep(100_000)),)),
    ("target-json-1e300", ["survey", "--target", "t.json"], "outside",
     (text("t.json", '{"PDI": 1e300}'),)),
    ("target-json-minus-1e6", ["survey", "--target", "t.json"], "outside",
     (text("t.json", '{"MAS": -1e6}'),)),
    ("target-json-nan", ["survey", "--target", "t.json"], "finite",
     (text("t.json", '{"PDI": NaN}'),)),
    ("target-json-bool", ["survey", "--target", "t.json"], "expected a number",
     (text("t.json", '{"PDI": true}'),)),
    ("target-json-list", ["survey", "--target", "t.json"], "expected an object",
     (text("t.json", "[80, 20]"),)),
    ("target-json-huge-int", ["survey", "--target", "t.json"], "not valid JSON",
     (text("t.json", '{"PDI": ' + "9" * 5000 + "}"),)),
    ("target-csv-binary", ["survey", "--target", "t.csv"], "binary",
     (text("t.csv", b"PDI\x00\x01\n1\n"),)),
    ("target-csv-giant-field", ["survey", "--target", "t.csv"], "cannot read target file",
     (text("t.csv", 'PDI\n"' + "1" * 200_000 + '"\n'),)),
    ("target-txt", ["survey", "--target", "t.txt"], "unsupported file type",
     (text("t.txt", "PDI=1"),)),
    ("target-string-too-long", ["survey", "--target", "PDI=80," * 50], "twice", ()),
    ("target-name-too-long", ["survey", "--target", LONG], "unknown country", ()),
    ("target-file-too-long", ["survey", "--target", LONG + ".json"], "not found", ()),
    # --- model, device (survey, chat, bench, tune, experiment)
    ("device-foo", ["survey", "--device", "foo"], "unknown --device", ()),
    ("device-empty", ["survey", "--device", ""], "--device is empty", ()),
    ("device-mps", ["survey", "--device", "mps"], "mps", ()),
    ("device-xla", ["chat", "--device", "xla", "hi"], "unknown --device", ()),
    ("device-meta", ["bench", "--country", "China", "--device", "meta"], "unknown --device", ()),
    ("device-cuda-index", ["tune", "--country", "China", "--device", "cuda:99"], "cuda", ()),
    ("device-cuda-garbage", ["survey", "--device", "cuda:abc"], "unknown --device", ()),
    ("device-experiment", ["experiment", "--device", "xla"], "unknown --device", ()),
    ("model-empty", ["survey", "--model", ""], "--model is empty", ()),
    ("model-blank", ["chat", "--model", "  ", "hi"], "--model is empty", ()),
    ("model-missing-gguf", ["survey", "--model", "none.gguf"], "not found", ()),
    ("model-empty-gguf", ["survey", "--model", "e.gguf"], "it is empty", (gguf("e.gguf", 0),)),
    ("model-random-gguf", ["survey", "--model", "r.gguf"], "magic",
     (gguf("r.gguf", content=NOISE),)),
    ("model-truncated-gguf", ["survey", "--model", "t.gguf"], "truncated",
     (gguf("t.gguf", 4_000_000),)),
    ("model-header-only-gguf", ["tune", "--country", "China", "--model", "h.gguf"],
     "cut short", (gguf("h.gguf", 100),)),
    ("model-folder-no-config", ["survey", "--model", "m"], "no config.json", (folder("m"),)),
    ("model-plain-file", ["survey", "--model", "m.txt"], "not a model folder",
     (text("m.txt", "hi"),)),
    ("model-missing-folder", ["survey", "--model", "./nowhere"], "not found", ()),
    ("model-bad-hub-id", ["survey", "--model", "not a model"], "hub id", ()),
    ("model-experiment-empty", ["experiment", "--model", ""], "model", ()),
    # --- prompt folders (survey, chat, bench)
    ("prompt-missing", ["survey", "--prompt", "nowhere"], "not found", ()),
    ("prompt-is-a-file", ["survey", "--prompt", "f"], "is a file", (text("f", "x"),)),
    ("prompt-no-adapter", ["survey", "--prompt", "p"], "adapter_model.safetensors is missing",
     (folder("p"),)),
    ("prompt-garbage", ["survey", "--prompt", "p"], "corrupt", (prompt(raw=b"garbage"),)),
    ("prompt-nan", ["survey", "--prompt", "p"], "prompt folder p", (prompt(fill=float("nan")),)),
    ("prompt-inf-chat", ["chat", "--prompt", "p", "hi"], "NaN or infinite",
     (prompt(fill=float("inf")),)),
    ("prompt-nan-bench", ["bench", "--country", "China", "--data", str(FIXTURE), "--prompt",
                          "p"], "NaN or infinite", (prompt(fill=float("-inf")),)),
    ("prompt-3d", ["survey", "--prompt", "p"], "[tokens, hidden]", (prompt(shape=(1, 5, 9)),)),
    ("prompt-empty-tensor", ["survey", "--prompt", "p"], "empty prompt",
     (prompt(shape=(0, HIDDEN)),)),
    ("prompt-absurd-tokens", ["survey", "--prompt", "p"], "at most",
     (prompt(shape=(2_000_000, 1)),)),
    ("prompt-meta-list", ["survey", "--prompt", "p"], "must hold a JSON object",
     (prompt(meta=[1, 2]),)),
    ("prompt-meta-string", ["chat", "--prompt", "p", "hi"], "must hold a JSON object",
     (prompt(meta="hello"),)),
    ("prompt-meta-placement-number", ["survey", "--prompt", "p"], "'placement' must be",
     (prompt(meta={"placement": 5}),)),
    ("prompt-meta-placement-unknown", ["survey", "--prompt", "p"], "unknown placement",
     (prompt(meta={"placement": "middle"}),)),
    ("prompt-meta-hidden-text", ["survey", "--prompt", "p"], "'hidden' must be",
     (prompt(meta={"hidden": "576"}),)),
    ("prompt-meta-hidden-wrong", ["survey", "--prompt", "p"], "inconsistent",
     (prompt(meta={"hidden": 100}),)),
    ("prompt-meta-broken-json", ["survey", "--prompt", "p"], "not readable JSON",
     (prompt(meta=None), text("p/culturetune.json", "{broken")),),
    ("prompt-meta-deep", ["survey", "--prompt", "p"], "not readable JSON",
     (prompt(meta=None), text("p/culturetune.json", _deep(100_000))),),
    ("prompt-long-name", ["survey", "--prompt", LONG], "file name too long", ()),
    ("persona-and-system", ["survey", "--persona", "China", "--system", "x"], "only one", ()),
    ("persona-unknown", ["chat", "--persona", "Chna", "hi"], "did you mean", ()),
    # --- chat
    ("chat-max-new-tokens-0", ["chat", "--max-new-tokens", "0", "hi"], "--max-new-tokens", ()),
    ("chat-max-new-tokens-negative", ["chat", "--max-new-tokens", "-3", "hi"],
     "--max-new-tokens", ()),
    ("chat-max-new-tokens-huge", ["chat", "--max-new-tokens", "1000000000", "hi"],
     "at most", ()),
    ("chat-empty-message", ["chat", ""], "the message is empty", ()),
    ("chat-blank-message", ["chat", "   \n "], "the message is empty", ()),
    # --- bench
    ("bench-limit-0", ["bench", "--country", "China", "--limit", "0"], "--limit", ()),
    ("bench-limit-negative", ["bench", "--country", "China", "--limit", "-1"], "--limit", ()),
    ("bench-data-missing", ["bench", "--country", "China", "--data", "no.csv"], "not found", ()),
    ("bench-data-txt", ["bench", "--country", "China", "--data", "d.txt"], "unsupported",
     (text("d.txt", "x"),)),
    ("bench-data-empty-folder", ["bench", "--country", "China", "--data", "d"], "holds no",
     (folder("d"),)),
    ("bench-data-wrong-columns", ["bench", "--country", "China", "--data", "d.csv"],
     "d.csv", (text("d.csv", "a,b\n1,2\n"),)),
    ("bench-data-binary", ["bench", "--country", "China", "--data", "d.csv"], "d.csv",
     (text("d.csv", NOISE),)),
    ("bench-data-long-name", ["bench", "--country", "China", "--data", LONG], "too long", ()),
    ("bench-country-unknown", ["bench", "--country", "Chna", "--data", str(FIXTURE)],
     "unknown country", ()),
    ("bench-country-empty", ["bench", "--country", "", "--data", str(FIXTURE)],
     "unknown country ''", ()),
    ("bench-loglik-hard", ["bench", "--country", "China", "--split", "hard", "--scoring",
                           "loglik"], "easy split only", ()),
    ("bench-per-question-without-json", ["bench", "--country", "China", "--per-question"],
     "--json", ()),
    ("bench-both-selections", ["bench", "--country", "China", "--all-countries"], "not both", ()),
    # --- tune: settings
    ("tune-time-limit-nan", ["tune", "--country", "China", "--time-limit", "nan"], "finite", ()),
    ("tune-time-limit-inf", ["tune", "--country", "China", "--time-limit", "inf"], "finite", ()),
    ("tune-time-limit-negative", ["tune", "--country", "China", "--time-limit", "-5"],
     "negative", ()),
    ("tune-tokens-0", ["tune", "--country", "China", "--tokens", "0"], "--tokens", ()),
    ("tune-tokens-negative", ["tune", "--country", "China", "--tokens", "-1"], "--tokens", ()),
    ("tune-budget-0", ["tune", "--country", "China", "--budget", "0"], "--budget", ()),
    ("tune-budget-absurd", ["tune", "--country", "China", "--budget", "1000000000000"],
     "--budget", ()),
    ("tune-population-0", ["tune", "--country", "China", "--population", "0"], "--population",
     ()),
    ("tune-population-absurd", ["tune", "--country", "China", "--population", "10000000"],
     "--population", ()),
    ("tune-seed-negative", ["tune", "--country", "China", "--seed", "-1"], "--seed", ()),
    ("tune-seed-huge", ["tune", "--country", "China", "--seed", str(2**40)], "--seed", ()),
    ("tune-cma-population-1", ["tune", "--country", "China", "--optimizer", "cma",
                               "--population", "1"], "--population 2", ()),
    ("tune-cma-subspace-1", ["tune", "--country", "China", "--optimizer", "cma",
                             "--subspace", "1"], "--subspace", ()),
    ("tune-subspace-0", ["tune", "--country", "China", "--subspace", "0"], "--subspace", ()),
    ("tune-subspace-word", ["tune", "--country", "China", "--subspace", "wide"], "--subspace",
     ()),
    ("tune-init-text-missing", ["tune", "--country", "China", "--init", "text"], "--init-text",
     ()),
    ("tune-init-text-empty", ["tune", "--country", "China", "--init", "text", "--init-text",
                              " "], "--init-text", ()),
    ("tune-init-text-without-init", ["tune", "--country", "China", "--init-text", "hello"],
     "only with --init text", ()),
    ("tune-orders-unknown", ["tune", "--country", "China", "--orders", "sideways"], "orders", ()),
    ("tune-no-target", ["tune"], "--country", ()),
    ("tune-country-empty", ["tune", "--country", ""], "empty target", ()),
    ("tune-target-absurd", ["tune", "--target", "PDI=1e300"], "outside", ()),
    ("tune-constant-inf", ["tune", "--country", "China", "--constant", "inf"], "finite", ()),
    # --- tune: where it writes
    ("tune-out-is-a-file", ["tune", "--country", "China", "--out", "f"], "is a file",
     (text("f", "mine"),)),
    ("tune-out-under-a-file", ["tune", "--country", "China", "--out", "f/run"], "not a folder",
     (text("f", "mine"),)),
    ("tune-out-unwritable", ["tune", "--country", "China", "--out", "/proc/culturetune/run"],
     "cannot write", ()),
    ("tune-out-foreign-files", ["tune", "--country", "China", "--out", "mine"],
     "not a culturetune run", (text("mine/history.csv", "my own data"),
                               text("mine/notes.txt", "x"))),
    ("tune-out-existing-run", ["tune", "--country", "China", "--out", "run"], "--resume",
     (run(),)),
    ("tune-out-empty", ["tune", "--country", "China", "--out", ""], "empty", ()),
    ("tune-out-long", ["tune", "--country", "China", "--out", LONG], "too long", ()),
    ("tune-out-locked", ["tune", "--country", "China", "--out", "busy"], "in use",
     (held("busy"),)),
    ("tune-default-folder-is-a-file", ["tune", "--country", "China"], "is a file",
     (text("runs/chi-adam-s0", "x"),)),
    # --- tune --resume
    ("resume-missing", ["tune", "--resume", "nowhere"], "nothing to resume", ()),
    ("resume-not-a-run", ["tune", "--resume", "d"], "run.json is missing", (folder("d"),)),
    ("resume-run-json-list", ["tune", "--resume", "run"], "malformed", (run(run_json=[]),)),
    ("resume-run-json-broken", ["tune", "--resume", "run"], "not readable JSON",
     (run(), text("run/run.json", "{")),),
    ("resume-run-json-seed-text", ["tune", "--resume", "run"], "--seed",
     (run(run_json={"config": run_config(seed="x")}),)),
    ("resume-run-json-budget-absurd", ["tune", "--resume", "run"], "--budget",
     (run(run_json={"config": run_config(budget=10**15)}),)),
    ("resume-run-json-target-shape", ["tune", "--resume", "run"], "target",
     (run(run_json={"config": run_config(target=5)}),)),
    ("resume-history-edited", ["tune", "--resume", "run"], "history.csv cannot be read",
     (run(history="evaluations,best_loss,mean_loss,seconds\n8,abc,1,1\n"),)),
    ("resume-history-columns", ["tune", "--resume", "run"], "history.csv cannot be read",
     (run(history="a,b\n1,2\n"),)),
    ("resume-history-contradicts", ["tune", "--resume", "run"], "does not match",
     (run(history="evaluations,best_loss,mean_loss,seconds\n8,0.5,0.5,1\n16,0.5,0.5,2\n"),)),
    ("resume-history-binary", ["tune", "--resume", "run"], "history.csv cannot be read",
     (run(), text("run/history.csv", b"\xff\xfe\x00\x01")),),
    ("resume-checkpoint-garbage", ["tune", "--resume", "run"], "corrupt",
     (run(checkpoint=b"not a checkpoint"),)),
    ("resume-checkpoint-negative-steps", ["tune", "--resume", "run"], "inconsistent",
     (run(steps=(20, -4)),)),
    ("resume-conflicting-seed", ["tune", "--resume", "run", "--seed", "5"], "seed", (run(),)),
    ("resume-conflicting-optimizer", ["tune", "--resume", "run", "--optimizer", "cma"],
     "optimizer", (run(),)),
    ("resume-conflicting-country", ["tune", "--resume", "run", "--country", "USA"], "target",
     (run(),)),
    ("resume-conflicting-tokens", ["tune", "--resume", "run", "--tokens", "7"], "tokens",
     (run(),)),
    ("resume-conflicting-model", ["tune", "--resume", "run", "--model",
                                  "HuggingFaceTB/SmolLM2-360M-Instruct"], "model", (run(),)),
    ("resume-budget-below-done", ["tune", "--resume", "run", "--budget", "8"], "at least 16",
     (run(),)),
    ("resume-other-out", ["tune", "--resume", "run", "--out", "elsewhere"], "leave --out out",
     (run(),)),
    ("resume-locked", ["tune", "--resume", "run"], "in use", (run(), held("run"))),
    ("resume-time-limit-nan", ["tune", "--resume", "run", "--time-limit", "nan"], "finite",
     (run(),)),
    # --- experiment
    ("experiment-methods-empty", ["experiment", "--methods", ""], "methods", ()),
    ("experiment-methods-commas", ["experiment", "--methods", ",,"], "methods", ()),
    ("experiment-countries-empty", ["experiment", "--countries", ""], "countries", ()),
    ("experiment-methods-twice", ["experiment", "--methods", "de,de"], "twice", ()),
    ("experiment-methods-unknown", ["experiment", "--methods", "sgd"], "unknown method", ()),
    ("experiment-seeds-0", ["experiment", "--seeds", "0"], "seeds", ()),
    ("experiment-seeds-absurd", ["experiment", "--seeds", "100000"], "seeds", ()),
    ("experiment-budget-absurd", ["experiment", "--budget", "100000000000"], "budget", ()),
    ("experiment-bench-limit-0", ["experiment", "--bench-limit", "0"], "bench_limit", ()),
    ("experiment-config-and-quick", ["experiment", "--config", "c.json", "--quick"],
     "not both", (text("c.json", "{}"),)),
    ("experiment-cma-population-1", ["experiment", "--config", "c.json"], "cma",
     (text("c.json", '{"population": 1, "methods": ["plain", "cma"]}'),)),
    ("experiment-data-missing", ["experiment", "--data", "missing.csv"], "not found", ()),
    ("experiment-data-garbage", ["experiment", "--data", "d.csv"], "d.csv",
     (text("d.csv", "a,b\n1,2\n"),)),
    ("experiment-config-missing", ["experiment", "--config", "none.json"], "not found", ()),
    ("experiment-config-list", ["experiment", "--config", "c.json"], "JSON object",
     (text("c.json", "[]"),)),
    ("experiment-config-deep", ["experiment", "--config", "c.json"], "nested too deeply",
     (text("c.json", _deep(100_000)),)),
    ("experiment-config-duplicate", ["experiment", "--config", "c.json"], "appears twice",
     (text("c.json", '{"seeds": 1, "seeds": 9}'),)),
    ("experiment-config-model-empty", ["experiment", "--config", "c.json"], "model",
     (text("c.json", '{"model": ""}'),)),
    ("experiment-config-tokens-0", ["experiment", "--config", "c.json"], "tokens",
     (text("c.json", '{"tokens": 0}'),)),
    ("experiment-config-utf16-garbage", ["experiment", "--config", "c.json"], "c.json",
     (text("c.json", b"\xff\xfe\x00\xd8"),)),
    ("experiment-out-is-a-file", ["experiment", "--out", "f"], "is a file", (text("f", "x"),)),
    ("experiment-out-foreign", ["experiment", "--out", "mine"], "not a culturetune experiment",
     (text("mine/thesis.tex", "x"),)),
    ("experiment-out-tune-run", ["experiment", "--out", "run"], "not a culturetune experiment",
     (run(),)),
    ("experiment-out-unwritable", ["experiment", "--out", "/proc/culturetune"], "cannot write",
     ()),
    ("experiment-out-locked", ["experiment", "--out", "exp"], "in use",
     (folder("exp/cells"), held("exp"))),
    # --- Ray (issue 10): checked before Ray starts and before any model loads
    ("experiment-ray-not-installed", ["experiment", "--executor", "ray"], "culturetune[ray]",
     (no_ray(),)),
    ("tune-ray-not-installed", ["tune", "--country", "China", "--workers", "2"],
     "culturetune[ray]", (no_ray(),)),
    ("experiment-executor-unknown", ["experiment", "--executor", "slurm"], "--executor", ()),
    ("experiment-workers-0", ["experiment", "--executor", "ray", "--workers", "0"], "--workers",
     ()),
    ("tune-workers-0", ["tune", "--country", "China", "--workers", "0"], "--workers", ()),
    ("tune-workers-negative", ["tune", "--country", "China", "--workers", "-2"], "--workers", ()),
    ("experiment-ray-options-without-ray", ["experiment", "--workers", "2"], "--executor ray", ()),
    ("experiment-ray-address-garbage", ["experiment", "--executor", "ray", "--ray-address",
                                        "not an address"], "--ray-address", ()),
    ("tune-ray-address-bad-port", ["tune", "--country", "China", "--workers", "2",
                                   "--ray-address", "head:99999"], "--ray-address", ()),
    ("experiment-cpus-per-worker-0", ["experiment", "--executor", "ray", "--cpus-per-worker",
                                      "0"], "--cpus-per-worker", ()),
    ("experiment-gpus-per-worker-negative", ["experiment", "--executor", "ray",
                                             "--gpus-per-worker", "-1"], "--gpus-per-worker", ()),
    # --- report
    ("report-missing", ["report", "nowhere"], "does not exist", ()),
    ("report-broken-json", ["report", "exp"], "not readable JSON",
     (text("exp/results.json", "{"),)),
    ("report-wrong-shape", ["report", "exp"], "not a culturetune experiment",
     (text("exp/results.json", '{"cells": []}'),)),
    ("report-deep-json", ["report", "exp"], "not readable JSON",
     (text("exp/results.json", _deep(100_000)),)),
    ("report-garbage-cells", ["report", "exp"], "cannot be rendered",
     (results(lambda d: d.update(cells=[{"country": 5}])),)),
    ("report-garbage-config", ["report", "exp"], "cannot be rendered",
     (results(lambda d: d.update(config=[])),)),
    ("report-garbage-countries", ["report", "exp"], "cannot be rendered",
     (results(lambda d: d.update(countries="x")),)),
    ("report-long-name", ["report", LONG], "too long", ()),
    ("report-locked", ["report", "exp"], "in use", (results(lambda d: None), held("exp"))),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every file (with its content hash) and folder under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A working folder; the model must not be loaded."""

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded although the input could be checked first")

    monkeypatch.setattr(models, "load_model", no_model)
    monkeypatch.chdir(tmp_path)
    cleanup: list = []
    yield tmp_path, cleanup
    for undo in cleanup:
        undo()


def assert_clean_error(code: int, err: str, needle: str, expected: int = 2) -> None:
    assert code == expected, err
    assert "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, err
    assert needle.lower() in errors[0].lower(), (needle, err)


@pytest.mark.parametrize(("args", "needle", "builders"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_input(args: list[str], needle: str, builders: tuple[Builder, ...], sandbox,
                       run_cli: Cli) -> None:
    root, cleanup = sandbox
    for build in builders:
        build(root, cleanup)
    before = snapshot(root)
    code, out, err = run_cli(args)
    assert_clean_error(code, err, needle)
    assert snapshot(root) == before


def test_the_table_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 80
    assert len({c[0] for c in CASES}) == len(CASES)
    commands = {c[1][0] for c in CASES}
    assert commands >= {"survey", "score", "countries", "tune", "chat", "bench", "experiment",
                        "report"}


# --------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tune", "--country", "China", "--out", "new"], "nothing was saved"),
        (["tune", "--resume", "run"], "--resume run"),
        (["experiment", "--out", "exp"], "run the same command again"),
        (["survey"], "interrupted"),
        (["chat", "hi"], "interrupted"),
    ],
    ids=["tune-new", "tune-resume", "experiment", "survey", "chat"],
)
def test_ctrl_c_while_loading_exits_130(args: list[str], needle: str, sandbox,
                                        monkeypatch: pytest.MonkeyPatch,
                                        run_cli: Cli) -> None:
    root, cleanup = sandbox
    run()(root, cleanup)

    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.common, "load_lm", interrupted)
    before = snapshot(root)
    code, _, err = run_cli(args)
    assert_clean_error(code, err, needle, expected=130)
    assert snapshot(root) == before  # no folder or lock file left behind


def test_interrupted_tuning_exits_130_with_the_resume_hint(
        sandbox, monkeypatch: pytest.MonkeyPatch, run_cli: Cli) -> None:
    monkeypatch.setattr(cli.common, "load_lm", lambda *a, **k: None)

    def stopped(lm: object, config: object, folder: str, *a: object) -> None:
        raise Interrupted(f"interrupted after 16 evaluations; the run is saved in {folder}: "
                          f"continue it with `culturetune tune --resume {folder}`")

    monkeypatch.setattr(cli.tune, "_run_tuning", stopped)
    code, _, err = run_cli(["tune", "--country", "China", "--out", "r"])
    assert_clean_error(code, err, "culturetune tune --resume r", expected=130)


# --------------------------------------------------------------------------- what is accepted


def test_resume_with_a_larger_budget_gets_to_the_model(sandbox, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Extending a run (and repeating its own settings) passes every check before the model."""
    root, cleanup = sandbox
    run()(root, cleanup)
    seen: dict[str, object] = {}

    class Loaded(Exception):
        pass

    def fake_run(lm: object, config: TuneConfig, folder: str, resume: bool, *a: object) -> None:
        seen.update(budget=config.budget, seed=config.seed, resume=resume)
        raise Loaded

    monkeypatch.setattr(cli.common, "load_lm", lambda *a, **k: None)
    monkeypatch.setattr(cli.tune, "_run_tuning", fake_run)
    with pytest.raises(Loaded):
        main(["tune", "--resume", "run", "--budget", "64", "--seed", "3", "--country", "CHN",
              "--population", "8"])
    assert seen == {"budget": 64, "seed": 3, "resume": True}


def test_utf16_responses_with_a_bom_are_read(tmp_path: Path,
                                             run_cli: Cli) -> None:
    path = tmp_path / "r.csv"
    body = "\t".join(VARS) + "\n" + "\t".join(["2"] * 24) + "\n"
    path.write_bytes(body.encode("utf-16"))  # what spreadsheets save as "Unicode text"
    code, out, err = run_cli(["score", str(path), "--json"])
    assert code == 0, err
    assert json.loads(out)["means"]["m01"] == 2


def test_history_short_of_the_checkpoint_is_completed(tmp_path: Path) -> None:
    """A crash between writing the checkpoint and history.csv (or a deleted history.csv) is
    repaired from the checkpoint; the last known time is carried on."""
    run(history="evaluations,best_loss,mean_loss,seconds\n")(tmp_path, [])
    record = runfolder.read_checkpoint(tmp_path / "run")
    assert record is not None
    rows = runfolder.checked_history(tmp_path / "run" / "history.csv", record[1], record[2])
    assert [r["evaluations"] for r in rows] == [8, 16]
    (tmp_path / "run" / "history.csv").unlink()
    assert runfolder.checked_history(tmp_path / "run" / "history.csv", record[1],
                                     record[2]) == rows


def test_lock_is_reentrant_in_one_process_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    with runfolder.claim(target):
        assert (target / runfolder.LOCK_FILE).exists()
        with runfolder.claim(target):
            pass
        assert (target / runfolder.LOCK_FILE).exists()
    assert not (tmp_path / "a").exists()  # nothing was written: the folders it made are gone
    target.mkdir(parents=True)
    with runfolder.claim(target):
        (target / "result").write_text("1")
    assert sorted(p.name for p in target.iterdir()) == ["result"]  # the lock file goes too


def test_resume_conflicts_name_what_is_kept() -> None:
    saved = run_config()
    assert runfolder.resume_conflicts(saved, {"budget": 999, "seed": 3}) == []
    lines = runfolder.resume_conflicts(saved, {"seed": 4, "optimizer": "cma"})
    assert lines == ["seed: the run has 3, not 4", "optimizer: the run has 'pso', not 'cma'"]


# --------------------------------------------------------------------------- two processes


def _culturetune(*args: str) -> list[str]:
    return [sys.executable, "-c", "from culturetune.cli import main; main()", *args]


def _default_sigint() -> None:
    """Run in a child before it starts: a process started in the background by a
    non-interactive shell ignores SIGINT and its children inherit that, so a child that is to
    receive SIGINT gets the default handler back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_second_process_is_refused_while_the_first_holds_the_folder(tmp_path: Path) -> None:
    """No model: another process holds the lock, as a running ``tune`` does."""
    cleanup: list = []
    try:
        held("busy")(tmp_path, cleanup)
        start = time.perf_counter()
        for args in (["tune", "--country", "China", "--out", "busy"],
                     ["tune", "--resume", "busy"]):
            proc = subprocess.run(_culturetune(*args), cwd=tmp_path, capture_output=True,
                                  text=True, timeout=120)
            expected = "in use" if args[1] != "--resume" else "nothing to resume"
            assert_clean_error(proc.returncode, proc.stderr, expected)
        assert time.perf_counter() - start < 60  # refused before any model load
    finally:
        for undo in cleanup:
            undo()


# --------------------------------------------------------------------------- with the model


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"tune ended early: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("tune did not start in time")
        time.sleep(0.1)


def _prompt_tensor(folder: Path):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))["prompt_embeddings"]


@pytest.mark.model
def test_two_tunes_one_folder_then_sigint_resume_equals_uninterrupted(tmp_path: Path) -> None:
    """A second ``tune`` on a folder in use is refused; SIGINT to the first exits 130 with the
    resume hint; a resumed run killed with SIGKILL leaves no stale lock; and ``--resume``
    continues the folder to exactly the result of an uninterrupted run with the same settings."""
    settings = ["--country", "China", "--optimizer", "pso", "--population", "8", "--seed", "0"]
    first = subprocess.Popen(_culturetune("tune", *settings, "--budget", "100000", "--out", "r",
                                          "--json"),
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=_default_sigint)
    try:
        _wait_for(tmp_path / "r" / "run.json", first)
        second = subprocess.run(_culturetune("tune", *settings, "--out", "r"), cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert_clean_error(second.returncode, second.stderr, "in use")
        third = subprocess.run(_culturetune("tune", "--resume", "r"), cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
        assert_clean_error(third.returncode, third.stderr, "in use")
        # SIGINT once the loop has run (its first periodic checkpoint, after 10 s of steps):
        # an interrupt while the objective is still being built rightly saves nothing
        _wait_for(tmp_path / "r" / "checkpoint.safetensors", first)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert_clean_error(first.returncode, err, "culturetune tune --resume r", expected=130)
    done = runfolder.recorded_evaluations(tmp_path / "r")
    again = subprocess.Popen(_culturetune("tune", "--resume", "r", "--budget", "100000"),
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 300
        while runfolder.recorded_evaluations(tmp_path / "r") <= done:  # a periodic save (10 s)
            assert again.poll() is None and time.monotonic() < end
            time.sleep(0.5)
    finally:
        again.kill()  # SIGKILL: nothing runs on the way out
        again.wait()
    done = runfolder.recorded_evaluations(tmp_path / "r")
    budget = done + 16  # two more steps; every recorded step is a whole population
    resumed = subprocess.run(_culturetune("tune", "--resume", "r", "--budget", str(budget),
                                          "--json"),
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run(_culturetune("tune", *settings, "--budget", str(budget), "--out",
                                        "fresh", "--json"),
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    a, b = json.loads(resumed.stdout), json.loads(fresh.stdout)
    assert a["evaluations"] == b["evaluations"] == budget
    assert [h["best_loss"] for h in a["history"]] == [h["best_loss"] for h in b["history"]]
    assert _prompt_tensor(tmp_path / "r").equal(_prompt_tensor(tmp_path / "fresh"))


@pytest.mark.model
def test_sigterm_while_loading_exits_143_and_leaves_no_folder(tmp_path: Path) -> None:
    proc = subprocess.Popen(_culturetune("tune", "--country", "China", "--out", "r"),
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    while not seen.endswith("...\n") or "loading" not in seen:  # the status line
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGTERM)
    err = seen + proc.communicate(timeout=300)[1]
    assert_clean_error(proc.returncode, err, "nothing was saved", expected=143)
    assert not (tmp_path / "r").exists()


@pytest.mark.model
def test_extending_a_run_equals_a_run_with_the_larger_budget(lm, tmp_path: Path) -> None:
    from culturetune.tuning.search import tune

    def config(budget: int) -> TuneConfig:
        return TuneConfig(target=lookup_country("China"), optimizer="pso", budget=budget,
                          population=8, seed=3)

    short = tune(lm, config(16), tmp_path / "short")
    assert short.evaluations == 16
    extended = tune(lm, config(32), tmp_path / "short", resume=True)
    direct = tune(lm, config(32), tmp_path / "direct")
    assert extended.evaluations == direct.evaluations == 32
    assert extended.prompt.embeddings.equal(direct.prompt.embeddings)
    saved = json.loads((tmp_path / "short" / "run.json").read_text())
    assert saved["config"]["budget"] == 32
    with pytest.raises(CultureTuneError, match="at least 32"):
        tune(lm, config(24), tmp_path / "short", resume=True)
    with pytest.raises(CultureTuneError, match="seed: the run has 3, not 4"):
        tune(lm, TuneConfig(target=lookup_country("China"), optimizer="pso", budget=32,
                            population=8, seed=4), tmp_path / "short", resume=True)


@pytest.mark.model
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tune", "--country", "China", "--tokens", "100000", "--out", "r"],
         "at most 8"),  # the context holds 8192 tokens
        (["tune", "--country", "China", "--optimizer", "pso", "--tokens", "6000", "--out", "r"],
         "virtual tokens fit"),  # fits the context, not a population's memory
        (["tune", "--country", "China", "--optimizer", "pso", "--subspace", "5000", "--out", "r"],
         "larger than the prompt itself"),
        (["survey", "--prompt", "big"], "at most 8"),
        (["chat", "--max-new-tokens", "9000", "hi"], "reads at most 8192"),
        (["chat", "--prompt", "big", "hi"], "at most 8"),
    ],
    ids=["tokens-context", "tokens-memory", "subspace", "survey-prompt",
         "chat-length", "chat-prompt"],
)
def test_limits_that_need_the_model(args: list[str], needle: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, lm,
                                    run_cli: Cli) -> None:
    """Refused once the model is known, before anything is allocated or written: no folder is
    left, so the same command with sane settings works on the same --out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.common, "load_lm", lambda *a, **k: lm)
    prompt("big", shape=(20_000, HIDDEN))(tmp_path, [])
    before = snapshot(tmp_path)
    code, _, err = run_cli(args)
    assert_clean_error(code, err, needle)
    assert snapshot(tmp_path) == before
    if args[0] == "tune":
        assert not (tmp_path / "r").exists()



# --------------------------------------------------------------------------- a full disk (issue 19)


class FullDisk:
    """Makes writes of the named files fail with ENOSPC at the low-level writers culturetune
    uses (safetensors' ``save_file``, ``Path.write_text``, matplotlib's ``savefig``), after
    half the bytes were written, as a full disk does; from the ``after``-th write of that file
    on (0: the first) until :meth:`free`."""

    MESSAGE = "No space left on device"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import safetensors.torch
        from matplotlib.figure import Figure

        self.name: str | None = None
        self.after = 0
        self.seen = 0
        real_save, real_text, real_fig = (safetensors.torch.save_file, Path.write_text,
                                          Figure.savefig)

        def save_file(tensors: dict, filename: str, metadata: dict | None = None) -> None:
            if self._hit(filename):
                from safetensors import SafetensorError

                Path(filename).write_bytes(safetensors.torch.save(tensors)[:100])
                raise SafetensorError(f"Error while serializing: I/O error: {self.MESSAGE} "
                                      "(os error 28)")
            real_save(tensors, filename, metadata=metadata)

        def write_text(path: Path, data: str, *args: object, **kwargs: object) -> int:
            if self._hit(path):
                real_text(path, data[: len(data) // 2], *args, **kwargs)
                raise OSError(errno.ENOSPC, self.MESSAGE, str(path))
            return real_text(path, data, *args, **kwargs)

        def savefig(fig: object, fname: object, *args: object, **kwargs: object) -> None:
            if self._hit(fname):
                Path(str(fname)).write_bytes(b"\x89PNG\r\n\x1a\n")
                raise OSError(errno.ENOSPC, self.MESSAGE, str(fname))
            real_fig(fig, fname, *args, **kwargs)

        monkeypatch.setattr(safetensors.torch, "save_file", save_file)
        monkeypatch.setattr(Path, "write_text", write_text)
        monkeypatch.setattr(Figure, "savefig", savefig)

    def fail(self, name: str, after: int = 0) -> FullDisk:
        self.name, self.after, self.seen = name, after, 0
        return self

    def free(self) -> None:
        self.name = None

    def _hit(self, path: object) -> bool:
        # atomic_path writes ``.NAME.XXXXXXXX`` beside ``NAME``
        if self.name is None or not Path(str(path)).name.startswith(f".{self.name}."):
            return False
        self.seen += 1
        return self.seen > self.after


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    return FullDisk(monkeypatch)


def assert_full_disk(code: int, err: str, name: str, then: str) -> None:
    """One ``error:`` line naming the file and the full disk, saying what to run; exit 2."""
    assert_clean_error(code, err, f"{name}: the disk is full")
    assert then in err and "free some space" in err, err


def assert_nothing_half_written(root: Path) -> None:
    """No temporary file is left, and every file there is whole (it parses)."""
    from safetensors.numpy import load_file

    for path in root.rglob("*"):
        assert not path.name.startswith("."), path
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(str(path))
        elif path.suffix == ".png":
            assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), path
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path


# (id, file that cannot be written): `culturetune report` on the quick results; nothing in
# the folder changes, and the same command once there is space writes the whole report.
REPORT_FAULTS = [
    ("report-md", "report.md"),
    ("report-html", "report.html"),
    ("report-radar", "radar-CHI.png"),
    ("report-convergence", "convergence.png"),
    ("report-loss-bars", "loss-by-method.png"),
]


@pytest.mark.parametrize("name", [c[1] for c in REPORT_FAULTS], ids=[c[0] for c in REPORT_FAULTS])
def test_report_on_a_full_disk_changes_nothing_then_writes_all(
        name: str, sandbox, disk: FullDisk, run_cli: Cli) -> None:
    root, cleanup = sandbox
    results(lambda d: None)(root, cleanup)
    before = snapshot(root)
    disk.fail(name)
    code, _, err = run_cli(["report", "exp"])
    assert_full_disk(code, err, f"exp/{'figures/' if name.endswith('.png') else ''}{name}",
                     "run the command again")
    assert snapshot(root) == before
    disk.free()
    code, _, err = run_cli(["report", "exp"])
    assert code == 0, err
    assert {"report.md", "report.html", "figures/radar-CHI.png"} <= set(snapshot(root / "exp"))
    assert_nothing_half_written(root)


def test_model_cache_on_a_full_disk_leaves_no_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The dequantized copy of a GGUF model is cached whole or not at all (transformers is
    replaced by a stand-in whose save_pretrained writes half a file, then fails as
    safetensors does on a full disk)."""
    import types

    import transformers
    from safetensors import SafetensorError

    full = {"disk": True}

    class Stub:
        config = types.SimpleNamespace()

        def save_pretrained(self, folder: str, **kwargs: object) -> None:
            (Path(folder) / "model.safetensors").write_bytes(b"half")
            if full["disk"]:
                raise SafetensorError("Error while serializing: I/O error: No space left on "
                                      "device (os error 28)")
            (Path(folder) / "config.json").write_text("{}")

        def to(self, device: str) -> Stub:
            return self

    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path / "cache"))
    for auto in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        monkeypatch.setattr(auto, "from_pretrained", lambda *a, **k: Stub())
    gguf_file = tmp_path / "tiny.gguf"
    gguf_file.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(CultureTuneError, match="the disk is full") as caught:
        models._load_cached_gguf(gguf_file, "float32", "cpu")
    cached = models.gguf_cache_folder(gguf_file)
    assert str(cached) in str(caught.value) and "CULTURETUNE_CACHE" in str(caught.value)
    assert caught.value.exit_code == 2
    assert list(cached.parent.iterdir()) == []  # no half-written cache folder
    full["disk"] = False
    models._load_cached_gguf(gguf_file, "float32", "cpu")
    assert (cached / "config.json").exists() and list(cached.parent.iterdir()) == [cached]


def _tune_cli(lm: object, monkeypatch: pytest.MonkeyPatch, run_cli: Cli,
              *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli.common, "load_lm", lambda *a, **k: lm)
    return run_cli(["tune", *args])


@pytest.mark.model
def test_tune_on_a_full_disk_at_every_write_then_resume_equals_uninterrupted(
        lm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disk: FullDisk,
        run_cli: Cli) -> None:
    """Each write of ``tune`` fails in turn on a full disk (run.json, the checkpoint,
    history.csv, the three prompt files, run.json at the end): one error line naming the file,
    exit 2, nothing half-written, the last checkpoint kept; ``--resume`` once there is space
    ends with the uninterrupted run's prompt, bit for bit."""
    from culturetune.tuning import search as tuning

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tuning, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every step
    settings = ["--country", "China", "--optimizer", "pso", "--budget", "16", "--population", "8",
                "--seed", "3"]
    code, _, err = _tune_cli(lm, monkeypatch, run_cli, *settings, "--out", "fresh")
    assert code == 0, err
    run_dir = tmp_path / "r"

    def tune_fails(name: str, after: int, then: str, *args: str) -> None:
        disk.fail(name, after)
        code, _, err = _tune_cli(lm, monkeypatch, run_cli, *args)
        disk.free()
        assert_full_disk(code, err, f"r/{name}", then)
        assert_nothing_half_written(tmp_path)

    resume = "continue the run with `culturetune tune --resume r`"
    # run.json of a new run: nothing is saved, the folder goes again
    tune_fails("run.json", 0, "run the same command again (nothing was saved)",
               *settings, "--out", "r")
    assert not run_dir.exists()
    # the checkpoint of the second step: the first is kept, run.json says the run stopped
    tune_fails("checkpoint.safetensors", 1, resume, *settings, "--out", "r")
    assert runfolder.recorded_evaluations(run_dir) == 8
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    # history.csv: the checkpoint is written first, the history is rebuilt from it
    history = (run_dir / "history.csv").read_bytes()
    tune_fails("history.csv", 0, resume, "--resume", "r")
    assert (run_dir / "history.csv").read_bytes() == history
    assert runfolder.recorded_evaluations(run_dir) == 16
    # the prompt's three files at the end of the run: none of them is put in place
    for name in ("adapter_model.safetensors", "adapter_config.json", "culturetune.json"):
        tune_fails(name, 0, resume, "--resume", "r")
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "checkpoint.safetensors", "history.csv", "run.json"]
    # run.json at the end (its first write of this resume goes through)
    tune_fails("run.json", 1, resume, "--resume", "r")
    code, out, err = _tune_cli(lm, monkeypatch, run_cli, "--resume", "r", "--json")
    assert code == 0, err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    assert_nothing_half_written(tmp_path)
    resumed = json.loads(out)
    fresh = json.loads((tmp_path / "fresh" / "culturetune.json").read_text())
    assert resumed["evaluations"] == fresh["evaluations"] == 16
    assert resumed["final"]["loss"] == fresh["final"]["loss"]
    import torch

    a, b = _prompt_tensor(run_dir), _prompt_tensor(tmp_path / "fresh")
    assert a.dtype == b.dtype == torch.float32 and a.equal(b)


@pytest.mark.model
def test_experiment_on_a_full_disk_at_every_write_then_goes_on(
        lm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disk: FullDisk,
        run_cli: Cli) -> None:
    """Each write of ``experiment`` fails in turn (the cell, results.json, a figure and the
    report): one error line naming the file, exit 2, nothing half-written; the same command
    once there is space reuses the saved cell and writes the rest."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.common, "load_lm", lambda *a, **k: lm)
    args = ["experiment", "--countries", "China", "--methods", "plain", "--data", str(FIXTURE),
            "--bench-limit", "2", "--out", "exp", "--json"]
    then = "run the same experiment again (same output folder)"
    cell = tmp_path / "exp" / "cells" / "CHI" / "plain.json"
    for name, rel in (("plain.json", "cells/CHI/plain.json"), ("results.json", "results.json"),
                      ("radar-CHI.png", "figures/radar-CHI.png"), ("report.md", "report.md"),
                      ("report.html", "report.html")):  # in the order they are written
        saved = cell.read_bytes() if cell.exists() else None
        disk.fail(name)
        code, _, err = run_cli(args)
        disk.free()
        assert_full_disk(code, err, f"exp/{rel}", then)
        assert not (tmp_path / "exp" / rel).exists()
        assert_nothing_half_written(tmp_path)
        assert saved is None or cell.read_bytes() == saved  # a finished cell is kept
    code, out, err = run_cli(args)
    assert code == 0, err
    results_doc = json.loads(out)
    assert results_doc["reused_cells"] == 1
    assert results_doc["cells"] == [json.loads(cell.read_text())]
    assert {"results.json", "report.md", "report.html", "figures/radar-CHI.png"} <= set(
        snapshot(tmp_path / "exp"))
    assert_nothing_half_written(tmp_path)
