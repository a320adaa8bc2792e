"""Writing files (issue 19): whole or not at all, a failure named in words, modes by the umask.

No model: the write points of a real run are in ``test_hostile.py`` (the fault table and the
``model`` tests that resume after a full disk).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from culturetune.core import files
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import WriteError, atomic_path, write_json, write_text
from culturetune.tuning import runfolder
from culturetune.tuning.checkpoint import Record
from culturetune.tuning.softprompt import SoftPrompt


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process's umask for the test (put back afterwards)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_every_written_file_follows_the_umask(mask: int, umask, tmp_path: Path) -> None:
    umask(mask)
    assert files.umask() == mask
    want = 0o666 & ~mask
    with runfolder.claim(tmp_path / "run"):
        assert _mode(tmp_path / "run" / runfolder.LOCK_FILE) == want
        write_json(tmp_path / "run" / "run.json", {"a": 1})
        record = Record.empty(3)
        record.add(np.zeros((2, 3)), np.ones(2), 0.5)
        record.save(tmp_path / "run")
        SoftPrompt(torch.zeros(2, 4), "answer", "m").save(tmp_path / "run")
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == ["adapter_config.json", "adapter_model.safetensors",
                       "checkpoint.safetensors", "culturetune.json", "history.csv", "run.json"]
    assert {name: _mode(tmp_path / "run" / name) for name in written} == dict.fromkeys(
        written, want)
    folder = files.temp_folder(tmp_path / "cache", ".tmp-")
    assert _mode(folder) == 0o777 & ~mask


def test_replacing_a_file_gives_it_the_umask_mode(umask, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    path.chmod(0o600)
    umask(0o002)
    write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o664


CAUSES = [
    (errno.ENOSPC, "the disk is full", "free some space"),
    (errno.EDQUOT, "quota is reached", "free some space"),
    (errno.EROFS, "read-only", "make the folder writable"),
    (errno.EACCES, "permission denied", "make the folder writable"),
]


@pytest.mark.parametrize(("code", "cause", "remedy"), CAUSES,
                         ids=["ENOSPC", "EDQUOT", "EROFS", "EACCES"])
def test_a_failed_write_keeps_the_old_file_and_names_the_cause(
        code: int, cause: str, remedy: str, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(WriteError) as caught, atomic_path(path) as tmp:
        Path(tmp).write_text("half")
        raise OSError(code, os.strerror(code))
    message = str(caught.value)
    assert message.startswith(f"cannot write {path}: ") and cause in message and remedy in message
    assert caught.value.exit_code == 2
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["results.json"]


def test_a_rust_writer_reports_the_error_number_in_its_text(tmp_path: Path) -> None:
    from safetensors import SafetensorError

    with pytest.raises(WriteError, match="the disk is full") as caught, \
            atomic_path(tmp_path / "x.safetensors"):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")
    assert caught.value.then("go on").args[0].endswith("free some space, then go on")
    assert os.listdir(tmp_path) == []


def test_other_errors_pass_through_untranslated(tmp_path: Path) -> None:
    for exc in (ValueError("a bug"), CultureTuneError("a user error"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), atomic_path(tmp_path / "x"):
            raise exc
    assert os.listdir(tmp_path) == []


def test_a_prompt_is_saved_whole_or_not_at_all(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.write_text

    def full(self: Path, data: str, *args: object, **kwargs: object) -> int:
        if self.name.startswith(".culturetune.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(WriteError, match=r"culturetune\.json: the disk is full"):
        SoftPrompt(torch.zeros(2, 4), "answer", "m").save(tmp_path / "p")
    assert list((tmp_path / "p").iterdir()) == []
