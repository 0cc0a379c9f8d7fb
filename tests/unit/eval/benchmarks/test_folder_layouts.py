"""Every adapter pointed at a folder reads only its own released files, says which, and refuses another's file.

Each case writes the benchmark's released file (names from each adapter's docstring and ``layouts.RELEASED_FILES``)
beside an unrelated JSON and MMStar's VLMEvalKit TSV; expected reads and leftovers are derived from those names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from pebr_lit.data.sources import RecordError
from pebr_lit.eval.benchmarks import MMMU, DynaMath, MathVerse, MathVision, MathVista, WeMath
from pebr_lit.eval.benchmarks.base import Benchmark
from tests.helpers.benchmark_files import (
    dynamath_row,
    mathverse_row,
    mathvision_row,
    mathvista_row,
    mmmu_row,
    wemath_row,
    write_json,
    write_neighbours,
    write_parquet,
    write_png,
)


def _mathvista(folder: Path) -> list[str]:
    write_parquet(folder / "testmini-00000-of-00001.parquet", [mathvista_row("1", "free_form", "3", None, "integer")])
    write_parquet(folder / "test-00000-of-00002.parquet", [mathvista_row("9", "free_form", "3", None, "integer")])
    return ["testmini-00000-of-00001.parquet"]


def _mathvision(folder: Path) -> list[str]:
    write_png(folder / "images" / "1.jpg")
    write_json(folder / "test.jsonl", [mathvision_row("1", [], "7")], lines=True)
    write_json(folder / "testmini.jsonl", [mathvision_row("2", [], "7")], lines=True)
    return ["test.jsonl"]


def _mathverse(folder: Path) -> list[str]:
    write_parquet(folder / "testmini.parquet", [mathverse_row("1", "free-form", "30")])
    write_json(folder / "testmini_text_only.json", [mathverse_row("2", "free-form", "30", image="")])
    return ["testmini.parquet"]


def _wemath(folder: Path) -> list[str]:
    write_png(folder / "testmini" / "a.png")
    write_json(folder / "testmini.json", [wemath_row("P1", "2steps_1")])
    return ["testmini.json"]


def _mmmu(folder: Path) -> list[str]:
    write_parquet(folder / "Art" / "validation-00000-of-00001.parquet", [mmmu_row("validation_Art_1")])
    write_parquet(folder / "Art" / "dev-00000-of-00001.parquet", [mmmu_row("dev_Art_1")])
    write_parquet(folder / "Math" / "validation-00000-of-00001.parquet", [mmmu_row("validation_Math_1")])
    return ["Art/validation-00000-of-00001.parquet", "Math/validation-00000-of-00001.parquet"]


def _dynamath(folder: Path) -> list[str]:
    for v in (1, 2):
        write_parquet(folder / "data" / f"sample_variant{v}-00000-of-00001.parquet", [dynamath_row("1")])
    return [f"data/sample_variant{v}-00000-of-00001.parquet" for v in (1, 2)]


# (adapter, writer of its own files -> the names it must read, the own-layout files it must leave, qids read)
CASES: list[tuple[type[Benchmark], Callable[[Path], list[str]], list[str], list[str]]] = [
    (MathVista, _mathvista, ["test-00000-of-00002.parquet"], ["1"]),
    (MathVision, _mathvision, ["testmini.jsonl"], ["1"]),
    (MathVerse, _mathverse, ["testmini_text_only.json"], ["1"]),
    (WeMath, _wemath, [], ["P1_2steps_1"]),
    (MMMU, _mmmu, ["Art/dev-00000-of-00001.parquet"], ["validation_Art_1", "validation_Math_1"]),
    (DynaMath, _dynamath, [], ["1_v1", "1_v2"]),
]


@pytest.mark.parametrize(("adapter", "write", "also_left", "qids"), CASES, ids=lambda c: getattr(c, "__name__", None))
def test_a_folder_reads_only_the_benchmarks_own_files_and_says_which(
    tmp_path, caplog, adapter, write, also_left, qids
) -> None:
    own = write(tmp_path)
    neighbours = write_neighbours(tmp_path)
    bench = adapter(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="pebr_lit.eval.benchmarks.layouts"):
        assert [i.qid for i in bench.items()] == qids
    assert [p.relative_to(tmp_path).as_posix() for p in bench.files_read] == own
    assert sorted(bench.files_left) == sorted(also_left + neighbours)
    assert f"{adapter.__name__}: reading {', '.join(own)} from" in caplog.text
    assert "MMStar.tsv" in caplog.text.split("not read:")[1]


@pytest.mark.parametrize(("adapter", "write", "also_left", "qids"), CASES, ids=lambda c: getattr(c, "__name__", None))
def test_another_benchmarks_file_is_refused_by_name_and_a_folder_without_own_files_too(
    tmp_path, adapter, write, also_left, qids
) -> None:
    write_neighbours(tmp_path)
    with pytest.raises(
        RecordError, match=rf"MMStar\.tsv: this is mmstar's released file, not {adapter.default_name}'s"
    ):
        adapter(str(tmp_path / "MMStar.tsv")).items()
    with pytest.raises(
        RecordError, match=rf"holds none of {adapter.default_name}'s released files .*found: MMStar\.tsv"
    ):
        adapter(str(tmp_path)).items()
