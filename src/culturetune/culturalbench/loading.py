"""Loading CulturalBench: a split's raw table from the Hugging Face hub
(``kellycyy/CulturalBench``) or a local CSV / JSON / JSONL / Parquet file, read by
``datasets.load_dataset`` (its progress bars hidden), then validated and selected by
:mod:`~culturetune.culturalbench.data`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from culturetune.core.errors import CultureTuneError
from culturetune.culturalbench.data import (
    FILE_FORMATS,
    HUB_CONFIGS,
    HUB_ID,
    AnyQuestion,
    check_split,
    questions_from_dataset,
    select_questions,
)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide ``datasets``' progress bars while loading (restored afterwards)."""
    import datasets

    ds_logging = datasets.logging
    was_enabled = not datasets.are_progress_bars_disabled()
    level = ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity_error()
    try:
        yield
    finally:
        ds_logging.set_verbosity(level)
        if was_enabled:
            datasets.enable_progress_bars()


def _hub_dataset(split: str) -> Any:
    import datasets

    config = HUB_CONFIGS[split]
    try:
        with _quiet_datasets():
            return datasets.load_dataset(HUB_ID, config, split="test")
    except Exception as exc:  # network, authentication, missing config: all end the same way
        raise CultureTuneError(
            f"could not load {HUB_ID} ({config}) from the Hugging Face hub: {exc}. Without "
            "network access pass --data with a local CSV/JSON/JSONL/Parquet copy"
        ) from exc


def _data_file(path: Path, split: str) -> Path:
    if path.is_dir():
        stem = HUB_CONFIGS[split]
        found = [p for p in sorted(path.iterdir()) if p.stem == stem and p.suffix in FILE_FORMATS]
        if not found:
            raise CultureTuneError(
                f"folder {path} holds no {stem}{{{','.join(FILE_FORMATS)}}} file; pass the file "
                "itself with --data"
            )
        return found[0]
    if not path.is_file():
        raise CultureTuneError(f"CulturalBench data file not found: {path}")
    return path


def _file_dataset(path: Path, split: str) -> tuple[Any, str]:
    import datasets

    path = _data_file(path.expanduser(), split)
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CultureTuneError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use "
            f"{', '.join(FILE_FORMATS)}"
        )
    # CSV: keep texts such as "None" or "NA" as written instead of turning them into nulls.
    kwargs: dict[str, Any] = {"na_filter": False} if fmt == "csv" else {}
    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # parse errors surface as several exception types
        cause = exc.__cause__ or exc
        raise CultureTuneError(f"could not read {path} as {fmt.upper()}: {cause}") from exc
    return ds, str(path)


def load_dataset_table(split: str = "easy", data: str | Path | None = None) -> tuple[Any, str]:
    """The raw ``datasets.Dataset`` of a split (hub when ``data`` is ``None``) and its source."""
    split = check_split(split)
    if data is None:
        return _hub_dataset(split), f"{HUB_ID} ({HUB_CONFIGS[split]})"
    return _file_dataset(Path(data), split)


def load_culturalbench(
    split: str = "easy",
    data: str | Path | None = None,
    countries: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[AnyQuestion]:
    """CulturalBench questions of one split, from the hub or a local file.

    ``countries`` selects countries by any name culturetune knows (``"USA"``, ``"United
    States"``) or the dataset's own spelling; the result lists them in that order (otherwise
    alphabetically). ``limit`` keeps at most the first N questions per country, in file order.
    """
    split = check_split(split)
    if limit is not None and limit < 1:
        raise CultureTuneError(f"limit must be at least 1, got {limit}")
    ds, source = load_dataset_table(split, data)
    questions = questions_from_dataset(ds, split, source)
    return select_questions(questions, countries, limit)
