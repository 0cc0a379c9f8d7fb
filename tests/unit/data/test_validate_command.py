"""``python -m pebr_lit.data.validate``: counts, the first problems, a report of all of them, exit status; and the
preflight that names missing data paths in one line (run through ``cli.py`` in tests/smoke/test_cli_validate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pebr_lit.data.preflight import missing_data_paths
from pebr_lit.data.validate import main


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    Image.new("RGB", (30, 40)).save(tmp_path / "ok.png")
    Image.new("RGB", (30, 20)).save(tmp_path / "flat.png")
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"qid": "a", "problem": "p", "answer": "1", "images": ["ok.png"]}) + "\n")
    bad = tmp_path / "bad.jsonl"
    rows = [
        {"qid": "a", "problem": "p", "answer": "1", "images": ["ok.png"]},  # a duplicate of good.jsonl's
        {"qid": "b", "problem": "p", "answer": "1", "images": ["flat.png"]},
        {"qid": "c", "problem": "p", "answer": "1", "images": []},
    ]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return good, bad


def test_good_files_exit_0(files, capsys):
    good, _ = files
    assert main([str(good)]) == 0
    assert capsys.readouterr().out == f"1 of 1 rows good in {good}\n"
    assert not list(good.parent.glob("*.bad_records.jsonl"))


def test_bad_rows_exit_1_with_a_report_of_every_one(files, capsys, tmp_path):
    good, bad = files
    assert main([str(good), str(bad), "--text-only", "error", "--report", str(tmp_path / "r.jsonl")]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"3 problem(s) in {good}, {bad}: 3 bad row(s) of 4 read\n")
    assert f"{bad}:row 1: field 'qid': duplicate qid 'a' (first at {good}:row 1)" in out
    assert f"{bad}:row 2: field 'images[0]': 30x20 px: shortest side under 28 px" in out
    assert f"All 3 are listed in {tmp_path / 'r.jsonl'}" in out
    assert [json.loads(line)["row"] for line in (tmp_path / "r.jsonl").read_text().splitlines()] == [1, 2, 3]
    # Options: a lower floor, text-only rows kept, the default report beside the first file.
    assert main([str(bad), "--min-side", "20"]) == 0
    assert main([str(bad), "--min-side", "20", "--max-pixels", "1000"]) == 1
    assert "over max_pixels=1000" in capsys.readouterr().out and (bad.parent / "bad.bad_records.jsonl").is_file()


def test_usage_errors_exit_2(files, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(files[0]), "--min-side", "-1"])
    assert info.value.code == 2 and "--min-side must be >= 0" in capsys.readouterr().err


def test_preflight_names_every_missing_data_path_in_one_line(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    init_args = {"train_files": [str(tmp_path / "a.jsonl"), "no/b.jsonl"], "image_root": "no/images", "val_files": None}
    message = missing_data_paths({"class_path": "x", "init_args": init_args})
    assert "\n" not in message
    assert message.startswith("data.init_args.train_files[1] 'no/b.jsonl'; data.init_args.image_root 'no/images': ")
    assert message.endswith("Check the path, or run the step that writes it first (docs/data.md).")
    assert missing_data_paths({"init_args": {"train_files": [str(tmp_path / "a.jsonl")]}}) is None
    # A subcommand is refused only for what it reads: a fit does not need the predict files.
    init_args = {"train_files": [str(tmp_path / "a.jsonl")], "predict_files": ["no/p.jsonl"], "tiers_dir": "no/t"}
    assert missing_data_paths({"init_args": init_args}, "predict").startswith("data.init_args.predict_files[0]")
    assert missing_data_paths({"init_args": init_args}, "fit").startswith("data.init_args.tiers_dir 'no/t': ")
    assert missing_data_paths({"init_args": init_args}) == missing_data_paths({"init_args": init_args}, "fit")
    assert missing_data_paths({"init_args": {**init_args, "tiers_dir": None}}, "fit") is None
