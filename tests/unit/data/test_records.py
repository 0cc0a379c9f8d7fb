"""Records: every input format round-trips, every malformed row names file, row and field."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pebr_lit.data.records import (
    Record,
    load_records,
    record_from_dict,
    record_to_dict,
    write_records,
)
from pebr_lit.data.sources import RecordError
from pebr_lit.data.validation import RecordChecks, validate_files


def png(color=(255, 0, 0), mode="RGB", size=(4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def row(qid="q1", **kw) -> dict:
    base = {"qid": qid, "problem": "How many circles?", "answer": "3", "images": ["img/a.png"]}
    base.update(kw)
    return base


def write_jsonl(path: Path, rows: list, raw_lines: list[str] = ()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png((255, 0, 0)))
    (tmp_path / "img" / "b.png").write_bytes(png((0, 0, 255)))
    return tmp_path


# ------------------------------------------------------------------------------------------- formats


def test_jsonl_round_trip_with_all_fields(image_dir: Path):
    full = row(
        key_words=["circle", "red"],
        description="a red circle",
        response="### ...",
        meta={"kind": "count"},
        images=["img/a.png", "img/b.png"],
    )
    src = write_jsonl(image_dir / "train.jsonl", [full, row("q2")])
    records = load_records(src)
    assert [r.qid for r in records] == ["q1", "q2"]
    first = records[0]
    # Relative paths resolve against the data file's folder.
    assert first.images == (str(image_dir / "img/a.png"), str(image_dir / "img/b.png"))
    assert first.key_words == ("circle", "red") and first.meta == {"kind": "count"}
    assert first.source == f"{src}:row 1"
    pixels = [im.getpixel((0, 0)) for im in first.load_images()]
    assert pixels == [(255, 0, 0), (0, 0, 255)]


def test_write_then_load_is_identity_and_paths_become_relative(image_dir: Path):
    records = load_records(write_jsonl(image_dir / "in.jsonl", [row(meta={"é": "ü"})]))
    out = write_records(records, image_dir / "out.jsonl")
    text = out.read_text(encoding="utf-8")
    assert '"images": ["img/a.png"]' in text  # inside the output folder: written relative
    assert "ü" in text  # ensure_ascii=False
    assert load_records(out) == records
    assert not [p for p in image_dir.iterdir() if p.name.endswith(".tmp")]


def test_write_records_from_dicts_creates_parent_and_keeps_relative_paths(tmp_path: Path):
    raw = {"qid": "q1", "question": "Q?", "answer": "3", "image": "x/y.png"}
    out = write_records([raw], tmp_path / "new" / "deep" / "d.jsonl")
    written = json.loads(out.read_text())
    assert written == {
        "qid": "q1",
        "problem": "Q?",
        "answer": "3",
        "images": ["x/y.png"],
        "key_words": [],
        "description": None,
        "response": None,
        "meta": {},
    }


def test_record_to_dict_relative_only_inside_root(tmp_path: Path):
    inside, outside = str(tmp_path / "d" / "img" / "a.png"), "/elsewhere/b.png"
    record = Record("q", "p", "a", (inside, outside, b"GIF89a..."), key_words=("k",))
    out = record_to_dict(record, tmp_path / "d")
    assert out["images"] == ["img/a.png", "/elsewhere/b.png", "data:image/gif;base64,R0lGODlhLi4u"]
    assert list(out) == ["qid", "problem", "answer", "images", "key_words", "description", "response", "meta"]
    assert record_to_dict(record)["images"][0] == inside  # no root: paths untouched


def test_json_list_and_data_wrapper(image_dir: Path):
    (image_dir / "a.json").write_text(json.dumps([row("a1"), row("a2")]))
    (image_dir / "b.json").write_text(json.dumps({"data": [row("b1")]}))
    assert [r.qid for r in load_records(image_dir / "a.json")] == ["a1", "a2"]
    assert [r.qid for r in load_records(image_dir / "b.json")] == ["b1"]


def test_parquet_with_image_bytes_round_trip(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = png((0, 255, 0))
    table = pa.Table.from_pylist(
        [
            {
                "qid": "p1",
                "problem": "Colour?",
                "answer": 7,
                "image": {"bytes": data, "path": "g.png"},
                "key_words": "green, square,",
            },
        ]
    )
    pq.write_table(table, tmp_path / "d.parquet")
    (record,) = load_records(tmp_path / "d.parquet")
    assert record.images == (data,) and record.answer == "7" and record.key_words == ("green", "square")
    assert record.load_images()[0].getpixel((1, 1)) == (0, 255, 0)
    # Bytes are written as a data URL and come back unchanged.
    out = write_records([record], tmp_path / "out.jsonl")
    assert json.loads(out.read_text())["images"][0].startswith("data:image/png;base64,")
    assert load_records(out) == [record]


def test_datasets_dir_dataset_and_dataset_dict(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    data = png((0, 0, 255))
    ds = datasets.Dataset.from_list([row("d1", images=None, image={"bytes": data, "path": None})])
    ds = ds.remove_columns("images").cast_column("image", datasets.Image())  # decodes to PIL when indexed
    ds.save_to_disk(str(tmp_path / "ds"))
    (record,) = load_records(tmp_path / "ds")
    assert record.images == (data,)  # read as raw bytes, not decoded eagerly
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dd"))
    assert load_records(tmp_path / "dd")[0].source == f"{tmp_path / 'dd'}[train]:row 1"
    assert load_records(tmp_path / "dd", split="test")[0].qid == "d1"
    with pytest.raises(RecordError, match=r"no split 'val' \(available: train, test\)"):
        load_records(tmp_path / "dd", split="val")
    datasets.Dataset.from_list([row("s1")], split="test").save_to_disk(str(tmp_path / "one"))
    with pytest.raises(RecordError, match="holds split 'test', not 'train'"):
        load_records(tmp_path / "one", split="train")


def test_folder_of_files_sorted_split_and_limit(tmp_path: Path):
    write_jsonl(tmp_path / "val.jsonl", [row("v1")])
    write_jsonl(tmp_path / "train-00001.jsonl", [row("t2")])
    write_jsonl(tmp_path / "train-00000.jsonl", [row("t0"), row("t1")])
    assert [r.qid for r in load_records(tmp_path)] == ["t0", "t1", "t2", "v1"]
    assert [r.qid for r in load_records(tmp_path, split="train")] == ["t0", "t1", "t2"]
    assert [r.qid for r in load_records(tmp_path, limit=3)] == ["t0", "t1", "t2"]
    assert load_records(tmp_path, limit=0) == []
    # Rows past the limit are not read, so a broken one there does not matter.
    write_jsonl(tmp_path / "val.jsonl", [row("v1")], raw_lines=["{broken"])
    assert [r.qid for r in load_records(tmp_path / "val.jsonl", limit=1)] == ["v1"]
    with pytest.raises(RecordError, match="no files for split 'test'"):
        load_records(tmp_path, split="test")


def test_blank_lines_skipped_and_rows_are_line_numbers(tmp_path: Path):
    src = tmp_path / "d.jsonl"
    src.write_text("\n" + json.dumps(row("a")) + "\n\n" + json.dumps(row("b")) + "\n")
    assert [r.source for r in load_records(src)] == [f"{src}:row 2", f"{src}:row 4"]


# ------------------------------------------------------------------------------------- lenient forms


def test_aliases_single_image_numbers_and_base64(tmp_path: Path):
    data = png((9, 9, 9))
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    src = write_jsonl(
        tmp_path / "d.jsonl",
        [{"id": 12, "question": "Q?", "answer": 2.0, "image": url, "keywords": ["a", 5], "difficulty": "hard"}],
    )
    (record,) = load_records(src)
    # id 12 -> "12"; 2.0 -> "2" (pandas turns gappy int columns into floats); extra field kept in meta.
    assert (record.qid, record.problem, record.answer) == ("12", "Q?", "2")
    assert record.images == (data,) and record.key_words == ("a", "5") and record.meta == {"difficulty": "hard"}


def test_pil_images_and_alpha_become_white_rgb(tmp_path: Path):
    transparent = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    record = record_from_dict(row(images=[transparent]))
    assert record.load_images()[0].getpixel((0, 0)) == (255, 255, 255)
    out = write_records([record], tmp_path / "o.jsonl")
    assert load_records(out)[0].load_images()[0].getpixel((1, 1)) == (255, 255, 255)


def test_image_root_and_absolute_paths(tmp_path: Path, image_dir: Path):
    absolute = str(image_dir / "img/b.png")
    src = write_jsonl(tmp_path / "sub.jsonl", [row("a", images=["a.png"]), row("b", images=[absolute])])
    a, b = load_records(src, image_root=image_dir / "img")
    assert a.images == (str(image_dir / "img/a.png"),) and b.images == (str(image_dir / "img/b.png"),)
    # An absolute path inside the image root is allowed; the images are 4x3 px, so no size floor here.
    assert validate_files([src], RecordChecks(image_root=str(image_dir / "img"), min_side=0)).records == [a, b]


# -------------------------------------------------------------------------------------------- errors

BAD_ROWS = [
    ({"problem": "p", "answer": "1", "images": ["a"]}, "qid", "missing"),
    (row(problem=""), "problem", "is empty"),
    (row(problem=3), "problem", "expected a string"),
    (row(answer=True), "answer", "expected a string or a number"),
    (row(answer=float("inf")), "answer", "not a finite number"),
    (row(answer=[1]), "answer", "expected a string or a number"),
    (row(images=[]), "images", "empty list"),
    (row(images=[None]), "images[0]", "missing image"),
    (row(images=["a.png", 4]), "images[1]", "unsupported image reference of type int"),
    (row(images=["data:image/png;base64,@@@"]), "images[0]", "invalid base64"),
    (row(images=[{"name": "x"}]), "images[0]", "dict without 'bytes' or 'path'"),
    (row(key_words={"a": 1}), "key_words", "expected a list of strings"),
    (row(key_words=["a", " "]), "key_words[1]", "is empty"),
    (row(key_words=["a", None]), "key_words[1]", "expected a string"),
    (row(description=5), "description", "expected a string or null"),
    (row(meta=[1]), "meta", "expected an object"),
    (row(image="x.png"), "images", "both 'images' and its alias 'image'"),
]


@pytest.mark.parametrize(("bad", "name", "problem"), BAD_ROWS)
def test_malformed_row_names_file_row_and_field(tmp_path: Path, bad: dict, name: str, problem: str):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(row("ok")) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError) as info:
        load_records(src)
    message = str(info.value)
    assert message.startswith(f"{src}:row 2: field '{name}': ")
    assert problem in message
    assert message.rstrip().endswith(".") and info.value.fix  # says what to do


def test_bad_json_line_and_non_object_row(tmp_path: Path):
    src = write_jsonl(tmp_path / "d.jsonl", [row("a")], raw_lines=['{"qid": "b",', "[1, 2]"])
    with pytest.raises(RecordError, match=rf"^{src}:row 2: invalid JSON"):
        load_records(src)
    src = write_jsonl(tmp_path / "h.jsonl", [row("a")], raw_lines=['{"qid": ' + "9" * 5000 + "}"])
    with pytest.raises(RecordError, match=rf"^{src}:row 2: unreadable JSON"):
        load_records(src)
    src = write_jsonl(tmp_path / "e.jsonl", [row("a")], raw_lines=["[1, 2]"])
    with pytest.raises(RecordError, match=rf"^{src}:row 2: expected an object, got list"):
        load_records(src)


def test_duplicate_qid_names_both_rows(tmp_path: Path):
    src = write_jsonl(tmp_path / "d.jsonl", [row("x"), row("y"), row("x")])
    with pytest.raises(RecordError) as info:
        load_records(src)
    assert str(info.value).startswith(f"{src}:row 3: field 'qid': duplicate qid 'x' (first at {src}:row 1)")
    with pytest.raises(RecordError, match="row 2: field 'qid': duplicate qid 'x'"):
        write_records([row("x"), row("x")], tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_sources(tmp_path: Path):
    with pytest.raises(RecordError, match="no such file or directory"):
        load_records(tmp_path / "nope.jsonl")
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(RecordError, match="unsupported file type '.csv'"):
        load_records(tmp_path / "d.csv")
    (tmp_path / "d.json").write_text(json.dumps(row()) + "\n" + json.dumps(row()))
    with pytest.raises(RecordError, match="Rename the file to .jsonl"):
        load_records(tmp_path / "d.json")
    (tmp_path / "e.json").write_text('{"rows": []}')
    with pytest.raises(RecordError, match="top level is a dict"):
        load_records(tmp_path / "e.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordError, match="no data files"):
        load_records(tmp_path / "empty")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(RecordError, match="cannot read Parquet"):
        load_records(tmp_path / "broken.parquet")


def test_missing_image_is_lazy_and_the_validation_pass_names_it(tmp_path: Path, image_dir: Path):
    src = write_jsonl(image_dir / "d.jsonl", [row("a"), row("b", images=["img/a.png", "img/gone.png"])])
    records = load_records(src)  # loading does not touch image files
    (problem,) = validate_files([src], RecordChecks(min_side=0)).problems
    gone = image_dir / "img/gone.png"
    assert problem.line().startswith(f"{src}:row 2: field 'images[1]': image file not found: {gone}")
    with pytest.raises(RecordError, match=r"row 2: field 'images\[1\]': image file not found"):
        records[1].load_images()
    (image_dir / "img" / "junk.png").write_bytes(b"not an image")
    junk = record_from_dict(row(images=["junk.png"]), "x.jsonl:row 9", image_dir / "img")
    with pytest.raises(RecordError, match=r"^x.jsonl:row 9: field 'images\[0\]': cannot decode image"):
        junk.load_images()


def test_write_rejects_hand_built_record_with_non_json_meta(tmp_path: Path):
    record = Record("q", "p", "a", ("x.png",), meta={"when": object()})
    with pytest.raises(RecordError, match=r"row 1: field 'meta': not JSON-serialisable"):
        write_records([record], tmp_path / "o.jsonl")


def test_record_error_pickles():
    error = RecordError("f.jsonl:row 3", "is empty", "Fill it in", "problem")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "f.jsonl:row 3: field 'problem': is empty. Fill it in." and copy.field == "problem"


def test_write_is_atomic_when_validation_fails(tmp_path: Path):
    out = write_records([row("a")], tmp_path / "o.jsonl")
    before = out.read_bytes()
    with pytest.raises(RecordError):
        write_records([row("b"), row("c", problem="")], out)
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["o.jsonl"]


# ------------------------------------------------------------------------------------------ fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        "qid",
        "problem",
        "answer",
        "images",
        "image",
        "key_words",
        "keywords",
        "description",
        "response",
        "meta",
        "id",
        "question",
        "other",
    ]
)
values = json_values | st.text(max_size=8).map(lambda s: f"data:image/png;base64,{s}")
# Some rows start valid and get a field or two overwritten, so both outcomes are exercised.
rows = st.dictionaries(keys, values, max_size=8) | st.builds(
    lambda qid, extra: {**row(qid), **extra}, st.text(min_size=1, max_size=6), st.dictionaries(keys, values, max_size=1)
)


# PEBR_FUZZ_EXAMPLES=5000 for a longer hunt; 150 keeps the unit tier fast.
@settings(
    max_examples=int(os.environ.get("PEBR_FUZZ_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(items=st.lists(rows, max_size=3) | st.lists(rows | json_values, max_size=4))
def test_fuzzed_rows_load_or_raise_record_error(tmp_path: Path, items: list):
    src = tmp_path / "fuzz.jsonl"
    src.write_text("\n".join(json.dumps(item) for item in items) + "\n", encoding="utf-8")
    try:
        records = load_records(src)
    except RecordError as e:
        assert str(src) in str(e)
        return
    try:
        out = write_records(records, tmp_path / "fuzz_out.jsonl")
    except RecordError:
        return  # e.g. lone surrogates that JSON escapes allow but UTF-8 cannot store
    assert load_records(out) == records
