"""The validation pass: every bad row of every file in one pass, images checked by header, paths confined."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pebr_lit.data.image_checks import FULL_DECODE_PIXELS, image_problem
from pebr_lit.data.records import record_from_dict
from pebr_lit.data.sources import RecordError
from pebr_lit.data.validation import SHOWN, Problem, RecordChecks, problems_message, validate_files, write_report


def save(path: Path, size=(32, 32), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path, format=fmt)
    return path


def row(qid: str, image: object = "img/ok.png", **kw) -> dict:
    return {"qid": qid, "problem": "How many?", "answer": "2", "images": [image], **kw}


def write_jsonl(path: Path, rows: list, raw: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in raw))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """<tmp>/data/img/ok.png (32 px), a 5x5 image, random bytes, a truncated PNG; <tmp>/secret.png outside."""
    data = tmp_path / "data"
    save(data / "img" / "ok.png")
    save(data / "img" / "tiny.png", (5, 5))
    (data / "img" / "junk.png").write_bytes(os.urandom(64))
    whole = (data / "img" / "ok.png").read_bytes()
    (data / "img" / "cut.png").write_bytes(whole[: len(whole) // 2])
    save(tmp_path / "secret.png")
    return data


def test_every_bad_row_is_reported_in_one_pass_with_its_field(root: Path):
    src = write_jsonl(
        root / "d.jsonl",
        [
            row("good"),
            row("junk", "img/junk.png"),
            row("cut", "img/cut.png"),
            row("tiny", "img/tiny.png"),
            row("gone", "img/gone.png"),
            row("up", "../secret.png"),
            row("abs", str(root.parent / "secret.png")),
            row("good"),  # a duplicate of row 1
            row("text", problem="What is \ud800?"),
            row("good2"),
        ],
        raw=('{"qid": "broken",',),
    )
    result = validate_files([src])
    assert [r.qid for r in result.records] == ["good", "good2"]
    assert result.rows == 11
    found = {p.source.rpartition(":row ")[2]: (p.field, p.problem) for p in result.problems}
    assert sorted(found, key=int) == [str(n) for n in range(2, 10)] + ["11"]
    assert found["2"][0] == "images[0]" and "cannot decode image" in found["2"][1]
    assert found["3"][0] == "images[0]" and "cannot decode image" in found["3"][1]
    assert found["4"] == ("images[0]", "5x5 px: shortest side under 28 px (the authors drop such images)")
    assert found["5"][0] == "images[0]" and "image file not found" in found["5"][1]
    assert (
        found["6"][0] == "images[0]"
        and "'../secret.png'" in found["6"][1]
        and "outside the image root" in found["6"][1]
    )
    assert found["7"][0] == "images[0]" and "outside the image root" in found["7"][1]
    assert found["8"] == ("qid", f"duplicate qid 'good' (first at {src}:row 1)")
    assert found["9"][0] == "problem" and "not valid Unicode" in found["9"][1]
    assert found["11"][0] is None and "invalid JSON" in found["11"][1]
    assert result.bad_rows == [f"{src}:row {n}" for n in (*range(2, 10), 11)] and not result.fatal


def test_allow_outside_root_and_image_root_decide_where_paths_may_point(root: Path):
    src = write_jsonl(root / "d.jsonl", [row("up", "../secret.png"), row("abs", str(root.parent / "secret.png"))])
    assert len(validate_files([src]).problems) == 2
    assert [r.qid for r in validate_files([src], RecordChecks(allow_outside_root=True)).records] == ["up", "abs"]
    # With the parent as image root the absolute path is inside it; "../secret.png" now climbs out of the parent.
    (problem,) = validate_files([src], RecordChecks(image_root=str(root.parent))).problems
    assert problem.source == f"{src}:row 1" and problem.field == "images[0]"
    # A dict path is confined too, and "img/../img/ok.png" stays inside.
    inside = write_jsonl(
        root / "e.jsonl", [row("a", {"path": "img/../img/ok.png"}), row("b", {"path": "/etc/hostname"})]
    )
    (problem,) = validate_files([inside]).problems
    assert problem.source == f"{inside}:row 2" and "outside the image root" in problem.problem


def test_a_symlink_placed_inside_the_root_is_followed(root: Path, tmp_path: Path):
    save(tmp_path / "elsewhere" / "x.png")
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    src = write_jsonl(root / "d.jsonl", [row("a", "linked/x.png")])
    assert [r.qid for r in validate_files([src]).records] == ["a"]


def test_image_sizes_against_the_floor_and_the_pixel_bounds(tmp_path: Path):
    assert image_problem(str(save(tmp_path / "a.png", (28, 28)))) is None
    assert "shortest side under 28 px" in image_problem(str(save(tmp_path / "b.png", (27, 400))))[0]
    assert image_problem(str(tmp_path / "b.png"), min_side=0) is None
    assert "under min_pixels=785" in image_problem(str(tmp_path / "a.png"), min_pixels=785)[0]
    assert "over max_pixels=783" in image_problem(str(tmp_path / "a.png"), max_pixels=783)[0]
    assert image_problem(str(tmp_path / "a.png"), min_pixels=784, max_pixels=784) is None
    assert "shortest side" in image_problem(Image.new("RGB", (5, 5)))[0]  # an image held in memory


def test_truncated_images_are_found_without_decoding_large_ones(tmp_path: Path):
    side = int(FULL_DECODE_PIXELS**0.5) + 8  # too large for the full decode: only header, verify, end marker
    jpeg = save(tmp_path / "big.jpg", (side, side), "JPEG").read_bytes()
    assert image_problem(jpeg) is None
    problem, fix = image_problem(jpeg[: len(jpeg) - 200])
    assert "truncated (JPEG without its end-of-image marker)" in problem and fix.startswith("Replace")
    png = save(tmp_path / "big.png", (side, side)).read_bytes()
    assert image_problem(png[: len(png) // 2])[0].startswith("cannot decode image from")
    small = save(tmp_path / "s.jpg", (64, 64), "JPEG").read_bytes()
    assert image_problem(small[:-300]) is not None  # small: fully decoded


def test_empty_missing_and_unreadable_files(tmp_path: Path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "bad.json").write_text("{not json")
    result = validate_files([tmp_path / "empty.jsonl", tmp_path / "nope.jsonl", tmp_path / "bad.json"])
    empty, missing, bad = result.problems
    assert (empty.source, empty.problem, empty.fatal) == (str(tmp_path / "empty.jsonl"), "holds no rows", False)
    assert missing.source == str(tmp_path / "nope.jsonl") and missing.fatal
    assert "invalid JSON" in bad.problem and bad.fatal and result.bad_rows == []
    assert validate_files([tmp_path / "empty.jsonl"], RecordChecks(allow_empty_files=True)).problems == []


def test_duplicates_across_files_and_limit_stops_reading(root: Path):
    a = write_jsonl(root / "a.jsonl", [row("x"), row("y")])
    b = write_jsonl(root / "b.jsonl", [row("y"), row("z")], raw=("{broken",))
    (dup,) = validate_files([a, b]).problems[:1]
    assert (dup.source, dup.field) == (f"{b}:row 1", "qid") and f"first at {a}:row 2" in dup.problem
    limited = validate_files([a, b], limit=3)  # x, y, (y duplicate), z: the broken line is never read
    assert [r.qid for r in limited.records] == ["x", "y", "z"] and limited.rows == 4


def test_message_quotes_the_first_problems_and_the_report_lists_all(root: Path, tmp_path: Path):
    rows = [row(f"q{i}", "img/tiny.png") for i in range(SHOWN + 5)]
    result = validate_files([write_jsonl(root / "d.jsonl", rows)])
    report = write_report(result, tmp_path / "out" / "bad.jsonl")
    message = problems_message(result, report, "Fix them")
    lines = message.splitlines()
    assert lines[0] == f"{SHOWN + 5} problem(s) in {root / 'd.jsonl'}: {SHOWN + 5} bad row(s) of {SHOWN + 5} read"
    assert sum(":row " in line for line in lines) == SHOWN and "... and 5 more" in message
    assert lines[-1] == f"All {SHOWN + 5} are listed in {report}. Fix them."
    listed = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["row"] for r in listed] == list(range(1, SHOWN + 6))
    assert listed[0]["file"] == str(root / "d.jsonl") and listed[0]["field"] == "images[0]" and listed[0]["fix"]


def test_a_report_quoting_text_that_is_not_unicode_is_still_written(tmp_path: Path):
    result = validate_files([write_jsonl(tmp_path / "d.jsonl", [row("a", key_words=["\udc80"])])])
    report = write_report(result, tmp_path / "r.jsonl")
    assert json.loads(report.read_text())["field"] == "key_words[0]"


# ------------------------------------------------------------------------------------------ properties

text = st.text(st.characters(categories=["Cs"]) | st.characters(), max_size=6)  # lone surrogates included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(
    ["qid", "problem", "answer", "images", "image", "key_words", "description", "response", "meta", "id", "x"]
)
images = st.sampled_from(["img/ok.png", "../secret.png", "/etc/hostname", "img/tiny.png", "img/junk.png", ""])
values = json_values | images | st.lists(images, max_size=2) | st.builds(lambda p: {"path": p}, images)
rows = st.dictionaries(keys, values, max_size=8) | st.builds(
    lambda extra: {**row("q"), **extra}, st.dictionaries(keys, values, max_size=2)
)
EXAMPLES = int(os.environ.get("PEBR_FUZZ_EXAMPLES", 150))


@settings(max_examples=EXAMPLES, deadline=None)
@given(raw=rows)
def test_any_row_validates_or_raises_a_record_error_naming_row_and_field(raw: dict):
    try:
        record = record_from_dict(raw, "f.jsonl:row 7", Path("/data"))
    except RecordError as e:
        assert e.source == "f.jsonl:row 7" and e.field, str(e)
        assert str(e).startswith(f"f.jsonl:row 7: field '{e.field}': ")
        return
    for value in (record.qid, record.problem, record.answer, *record.key_words):
        value.encode("utf-8")  # no lone surrogate reaches a tokenizer
    assert all(not isinstance(p, str) or p.startswith("/data/") for p in record.images)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(rows | json_values, max_size=4))
def test_any_file_gives_records_or_problems_naming_each_row(root: Path, items: list):
    src = root / "fuzz.jsonl"
    src.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    result = validate_files([src])
    assert len(result.records) + len(result.bad_rows) == result.rows == len(items)
    for problem in result.problems:
        assert isinstance(problem, Problem) and problem.source.startswith(str(src)) and problem.fix
        assert "unexpected error" not in problem.problem
        if problem.is_row:  # a row that is an object has the field named; "holds no rows" is the file's
            assert problem.field or not isinstance(items[int(problem.source.rpartition(" ")[2]) - 1], dict)


def test_a_progress_bar_shows_only_when_asked_and_after_the_delay(root: Path, capsys, monkeypatch):
    src = write_jsonl(root / "d.jsonl", [row(f"q{i}") for i in range(3)])
    validate_files([src], progress=True, desc="checking fit")  # faster than the delay: no bar
    assert "checking fit" not in capsys.readouterr().err
    monkeypatch.setattr("pebr_lit.data.validation.PROGRESS_DELAY_S", 0.0)
    validate_files([src], progress=False, desc="checking fit")
    assert "checking fit" not in capsys.readouterr().err
    validate_files([src], progress=True, desc="checking fit")
    assert "checking fit" in capsys.readouterr().err
