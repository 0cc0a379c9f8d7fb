"""Smoke: ``python -m pebr_lit.data.warmup_filter`` as a user runs it: counts printed, files written, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pebr_lit.data.records import load_records
from pebr_lit.data.sft_datamodule import SFTDataModule
from tests.helpers.warmup_rows import write_images, write_rows

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pebr_lit.data.warmup_filter", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_command_filters_the_authors_file_and_writes_records_and_summary(tmp_path):
    write_images(tmp_path / "images")
    data = write_rows(tmp_path / "raw" / "sft.json")
    out = tmp_path / "out" / "sft.jsonl"
    # The authors' spelling --image_root is accepted too, so their command line carries over.
    done = _run("--input", str(data), "--output", str(out), "--image_root", str(tmp_path / "images"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"warmup filter: 8 rows read, 2 kept, 6 dropped -> {out}"
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[1:-1]}
    # The four rules always print (to set beside the authors' counts); other reasons only when they occur.
    assert counts == {"rethink": 2, "missing_image": 1, "unreadable_image": 1, "small_image": 1, "multi_turn": 1}
    assert lines[-1] == f"summary: {tmp_path / 'out' / 'sft.summary.json'}"
    summary = json.loads((tmp_path / "out" / "sft.summary.json").read_text())
    assert (summary["rows"], summary["kept"], summary["dropped"]) == (8, 2, 6)
    assert [r.qid for r in load_records(out, image_root=tmp_path)] == ["sft-5", "rec-1"]

    # The SFT DataModule reads the output as its training files, with an image root that holds the images.
    dm = SFTDataModule(train_files=[str(out)], image_root=str(tmp_path), processor=object())
    dm.setup("fit")
    assert len(dm.datasets["fit"]) == 2


def test_strict_exits_1_with_the_row_and_usage_errors_exit_2(tmp_path):
    write_images(tmp_path / "images")
    data = write_rows(tmp_path / "sft.jsonl")
    out = tmp_path / "out.jsonl"
    strict = _run("--input", str(data), "--output", str(out), "--image-root", str(tmp_path / "images"), "--strict")
    assert strict.returncode == 1
    assert strict.stderr.startswith(f"error: {data}:row 7: field 'messages': ")
    assert not out.exists()
    for args in (
        ["--input", str(data)],  # no --output
        ["--input", str(tmp_path / "nope.json"), "--output", str(out)],
        ["--input", str(data), "--output", str(data)],
        ["--input", str(data), "--output", str(out), "--min-image-side", "-1"],
    ):
        bad = _run(*args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert "usage: python -m pebr_lit.data.warmup_filter" in bad.stderr
