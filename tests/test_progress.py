"""Progress as whole lines off a terminal (culturetune.core.progress, the bench callback)."""

from __future__ import annotations

import time

import pytest

from culturetune.core.progress import Heartbeat
from culturetune.report.console import bench_progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_throttled_and_forced_lines_always_come() -> None:
    said: list[str] = []
    clock = Clock()
    beat = Heartbeat(said.append, 15.0, beat=False, clock=clock)
    beat.update("start", force=True)
    clock.now = 5.0
    beat.update("5 s")  # too soon after the last line
    clock.now = 16.0
    beat.update("16 s")
    clock.now = 17.0
    beat.update("17 s")
    beat.update("done", force=True)
    assert said == ["start", "16 s", "done"]


def test_the_heartbeat_repeats_the_last_news_while_a_step_runs() -> None:
    said: list[str] = []
    with Heartbeat(said.append, 0.05) as beat:
        beat.update("step 1 · 16/640 evals", force=True)
        deadline = time.monotonic() + 5
        while len(said) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    count = len(said)
    time.sleep(0.15)
    assert count >= 4, said
    assert len(said) == count  # closed: no more lines
    assert said[0] == "step 1 · 16/640 evals"
    assert all(s.startswith("step 1 · 16/640 evals (still running; ") for s in said[1:])


def test_no_heartbeat_before_any_news() -> None:
    said: list[str] = []
    with Heartbeat(said.append, 0.02):
        time.sleep(0.1)
    assert said == []


def test_bench_progress_to_a_pipe_is_whole_lines(capsys: pytest.CaptureFixture[str]) -> None:
    show = bench_progress(every=3600)
    for done in range(0, 237, 32):
        show("plain", done, 236)
    show("plain", 236, 236)
    show("persona", 32, 236)
    show("persona", 236, 236)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines() == ["plain: 0/236", "plain: 236/236", "persona: 32/236",
                                "persona: 236/236"]


def test_quiet_bench_progress_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    show = bench_progress(quiet=True)
    show("plain", 236, 236)
    assert capsys.readouterr().err == ""
