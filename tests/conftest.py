"""Fixtures shared by the test files: the bundled model, loaded once per module, and the
command line run in-process.

The model fixtures are module-scoped, as each test file had them: a module that asks for one
loads it once. ``culturetune.model.loading`` is imported when a fixture is first used, so test
files that never load a model do not import it here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

#: Runs ``culturetune`` with the given arguments in-process: (exit status, stdout, stderr).
Cli = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture(scope="module")
def lm():
    """The bundled default model with automatic device and dtype."""
    from culturetune.model.loading import load_model

    return load_model()


@pytest.fixture(scope="module")
def lm32():
    """The bundled default model in float32 (batched and single runs agree to 1e-5)."""
    from culturetune.model.loading import load_model

    return load_model(dtype="float32")


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """The entry point run in-process; stdout and stderr are read (and cleared) after each run."""
    from culturetune.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(args)
        out, err = capsys.readouterr()
        code = exc.value.code
        return (0 if code is None else int(code)), out, err

    return run
