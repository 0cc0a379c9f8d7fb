"""Which files belong to which benchmark: a folder is read only for its own released files, another's file is refused.

Each benchmark's released data files are known by name: the Hugging Face exports (``test-*.parquet``,
``mmstar.parquet``, ...), the official JSON files and VLMEvalKit's TSVs, which VLMEvalKit names after the
dataset (``MMStar.tsv``, ``AI2D_TEST.tsv``, ``HallusionBench.tsv``, ``MathVista_MINI.tsv``, ...).
``own_files`` picks an adapter's files out of a folder (anything else beside them, such as an unrelated
JSON file, is left unread and named in the log line that says which files were read) and refuses a file
whose name is another benchmark's. A file named like none of them is read (a renamed copy): its columns are
then the only check, in each adapter. MMMU's and DynaMath's folders nest their files (subject folders,
``data/``), so theirs are searched below the folder; the others' only at its top.

Left out on purpose: reading the files (``benchmarks.tables``) and checking their columns (each adapter);
``datasets`` folders made by ``save_to_disk`` are read whole (their split is the selection).
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path

from pebr_lit.data.sources import RecordError

log = logging.getLogger(__name__)

#: Released data-file names per benchmark (``Benchmark.default_name``), as ``fnmatch`` patterns, any case.
#: ``{split}`` stands for the adapter's split.
RELEASED_FILES: dict[str, tuple[str, ...]] = {
    "mmstar": ("mmstar.parquet", "mmstar-*.parquet", "MMStar.tsv", "MMStar_MINI.tsv"),
    "ai2d": ("{split}-*.parquet", "AI2D_TEST.tsv", "AI2D_TEST_NO_MASK.tsv", "AI2D_MINI.tsv"),
    "hallusionbench": ("{split}-*.parquet", "HallusionBench.json", "HallusionBench.tsv"),
    "logicvista": ("dataset.json",),
    "mathvista": ("{split}.json", "{split}.jsonl", "{split}.parquet", "{split}-*.parquet", "MathVista_MINI.tsv"),
    "mathvision": ("{split}.jsonl", "{split}.parquet", "{split}-*.parquet", "MathVision*.tsv"),
    "mathverse": ("{split}.json", "{split}.parquet", "{split}-*.parquet", "MathVerse_MINI*.tsv"),
    "wemath": ("{split}.json", "{split}.parquet", "{split}-*.parquet", "WeMath*.tsv"),
    # below the folder: MMMU/MMMU's <Subject>/validation-*.parquet, lmms-lab/MMMU's data/validation-*.parquet
    "mmmu": ("{split}-*.parquet", "MMMU_DEV_VAL.tsv"),
    # below the folder: DynaMath_Sample's data/sample_variant<k>-*.parquet (older: sample<k>-*), or the seeds
    "dynamath": ("sample_variant*.parquet", "sample[0-9]*.parquet", "dataset.json", "DynaMath*.tsv"),
}
#: Benchmarks whose released folders nest their files (subject or ``data/`` folders): searched recursively.
NESTED = frozenset({"mmmu", "dynamath"})
#: File names that tell whose a file is (VLMEvalKit's TSVs, MMStar's parquet, HallusionBench's JSON); generic
#: names ("test-*.parquet", "dataset.json", which DynaMath's repository uses too) tell nothing.
OWNER_NAMES: dict[str, tuple[str, ...]] = {
    "mathvista": ("MathVista*.tsv",),
    "mmmu": ("MMMU*.tsv",),
    "mathverse": ("MathVerse*.tsv",),
    "mathvision": ("MathVision*.tsv",),
    "dynamath": ("DynaMath*.tsv",),
    "wemath": ("WeMath*.tsv",),
    "logicvista": ("LogicVista*.tsv",),
    "mmstar": ("MMStar*.tsv", "mmstar.parquet", "mmstar-*.parquet"),
    "ai2d": ("AI2D*.tsv",),
    "hallusionbench": ("HallusionBench*.tsv", "HallusionBench*.json"),
}
_DATA_SUFFIXES = (".parquet", ".json", ".jsonl", ".tsv")


def _matches(name: str, patterns: tuple[str, ...], split: str | None) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.lower().replace("{split}", split or "*")) for p in patterns)


def _name(file: Path, folder: Path) -> str:
    """``file``'s path below ``folder`` ("Art/validation-0.parquet" in a nested layout, else its name)."""
    return file.relative_to(folder).as_posix()


def owner_of(path: Path) -> str | None:
    """The benchmark whose released file name ``path`` has, or None (a generic or unknown name)."""
    return next((bench for bench, names in OWNER_NAMES.items() if _matches(path.name, names, None)), None)


def check_not_foreign(path: Path, benchmark: str, adapter: str, layout: str) -> None:
    """Refuse a file whose name is another benchmark's released file (``RecordError`` naming it and its owner)."""
    owner = owner_of(path)
    if owner is not None and owner != benchmark:
        raise RecordError(
            str(path), f"this is {owner}'s released file, not {benchmark}'s", f"{adapter} expects {layout}"
        )


def own_files(path: Path, benchmark: str, split: str | None, adapter: str, layout: str) -> tuple[list[Path], list[str]]:
    """The files to read at ``path``: the file itself (refused if another benchmark's), a ``datasets`` folder
    itself, or the folder's own released files for ``split`` (sorted), logging which were read; and the names of
    the data files left unread beside them."""
    if path.is_file() or (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        if path.is_file():
            check_not_foreign(path, benchmark, adapter, layout)
        return [path], []
    patterns = RELEASED_FILES.get(benchmark, ("{split}*.*",) if split else ("*",))  # unlisted: the split's files
    below = path.rglob("*") if benchmark in NESTED else path.iterdir()
    data = sorted(p for p in below if p.is_file() and p.suffix.lower() in _DATA_SUFFIXES)
    chosen = [p for p in data if _matches(p.name, patterns, split)]
    if not chosen:
        found = ", ".join(_name(p, path) for p in data) or "no data files"
        raise RecordError(
            str(path),
            f"holds none of {benchmark}'s released files ({', '.join(patterns)}; split {split!r}); found: {found}",
            f"{adapter} expects {layout}",
        )
    left = [_name(p, path) for p in data if p not in chosen]
    log.info(
        "%s: reading %s from %s%s",
        adapter,
        ", ".join(_name(p, path) for p in chosen),
        path,
        f" (not read: {', '.join(left)})" if left else "",
    )
    return chosen, left
