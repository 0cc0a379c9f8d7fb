"""Unit tests for the synthetic world: determinism, disjoint splits, answers and pictures vs. the scene."""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pebr_lit.demo import synthetic
from pebr_lit.demo.synthetic import (
    KINDS,
    Scene,
    SceneObject,
    WorldConfig,
    corpus,
    describe,
    generate,
    keywords,
    make_question,
    make_record,
    make_scene,
    render,
)
from pebr_lit.format import response as pebr_format

COLOR_WORDS = ("red", "green", "blue", "yellow")
SHAPE_WORDS = ("circle", "square", "triangle")


def _records(n: int, split: str = "train", seed: int = 0, cfg: WorldConfig | None = None) -> list[dict]:
    return [make_record(i, seed, split, cfg)[0] for i in range(n)]


# --- an independent answer key: parse the question text, count from meta["objects"] -----------------


def _term(text: str) -> tuple[str, str]:
    """'red shapes' -> ('color', 'red'); 'circles' -> ('shape', 'circle')."""
    if text.endswith(" shapes"):
        color = text[: -len(" shapes")]
        assert color in COLOR_WORDS, text
        return "color", color
    assert text[:-1] in SHAPE_WORDS and text.endswith("s"), text
    return "shape", text[:-1]


def _n(objects: list[dict], term: tuple[str, str]) -> int:
    return sum(o[term[0]] == term[1] for o in objects)


def kind_of(question: str) -> str:
    """The kind a question's wording belongs to (order matters: specific patterns first)."""
    patterns = [
        ("largest_color", r"What color is the largest shape\?"),
        ("largest_shape", r"What shape is the largest object\?"),
        ("count_total", r"How many shapes are there in the image\?"),
        ("most_common_color", r"Which color appears most often\?"),
        ("compare_colors", r"Are there more .+\? Answer yes or no\."),
        ("more_than", r"How many more .+ than .+ are there\?"),
        ("sum_counts", r"How many .+ and .+ are there in total\?"),
        ("count_color", r"How many (red|green|blue|yellow) shapes are there\?"),
        ("count_shape", r"How many (circles|squares|triangles) are there\?"),
    ]
    return next(kind for kind, pattern in patterns if re.fullmatch(pattern, question))


def expected_answer(kind: str, question: str, objects: list[dict]) -> str:
    assert kind_of(question) == kind, question
    large = [o for o in objects if o["size"] == "large"]
    assert len(large) == 1
    if kind == "largest_color":
        assert question == "What color is the largest shape?"
        return large[0]["color"]
    if kind == "largest_shape":
        assert question == "What shape is the largest object?"
        return large[0]["shape"]
    if kind == "count_total":
        assert question == "How many shapes are there in the image?"
        return str(len(objects))
    if kind in ("count_color", "count_shape"):
        m = re.fullmatch(r"How many (.+) are there\?", question)
        term = _term(m.group(1))
        assert term[0] == kind.removeprefix("count_")
        return str(_n(objects, term))
    if kind == "compare_colors":
        m = re.fullmatch(r"Are there more (\w+) shapes than (\w+) shapes\? Answer yes or no\.", question)
        a, b = m.group(1), m.group(2)
        assert a != b and {a, b} <= set(COLOR_WORDS)
        return "yes" if _n(objects, ("color", a)) > _n(objects, ("color", b)) else "no"
    if kind == "sum_counts":
        m = re.fullmatch(r"How many (.+) and (.+) are there in total\?", question)
        a, b = _term(m.group(1)), _term(m.group(2))
        assert a[0] == b[0] and a != b
        return str(_n(objects, a) + _n(objects, b))
    if kind == "more_than":
        m = re.fullmatch(r"How many more (.+) than (.+) are there\?", question)
        a, b = _term(m.group(1)), _term(m.group(2))
        assert a[0] == b[0] and a != b
        diff = _n(objects, a) - _n(objects, b)
        assert diff >= 0, "'how many more' must not have a negative answer"
        return str(diff)
    if kind == "most_common_color":
        assert question == "Which color appears most often?"
        counts = Counter(o["color"] for o in objects).most_common()
        assert len(counts) == 1 or counts[0][1] > counts[1][1], "asked with a tie"
        return counts[0][0]
    raise AssertionError(f"no answer key for kind {kind}")


# --- an independent look at the picture: 4-connected blobs of non-background pixels ---------------


def _blobs(image: Image.Image, background: tuple[int, int, int]) -> list[dict]:
    pixels = np.asarray(image)  # [H, W, 3]
    fg = np.any(pixels != np.array(background, dtype=np.uint8), axis=-1)  # [H, W]
    seen = np.zeros_like(fg)
    blobs = []
    for y0, x0 in zip(*np.nonzero(fg)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, points = deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            points.append((y, x))
            for yy, xx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= yy < fg.shape[0] and 0 <= xx < fg.shape[1] and fg[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    queue.append((yy, xx))
        ys, xs = np.array(points).T
        colors = Counter(map(tuple, pixels[ys, xs]))
        bbox_area = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        blobs.append(
            {
                "cx": xs.mean(),
                "cy": ys.mean(),
                "area": len(points),
                "fill": len(points) / bbox_area,
                "color": colors.most_common(1)[0][0],
                "touches_border": bool(
                    ys.min() == 0 or xs.min() == 0 or ys.max() == fg.shape[0] - 1 or xs.max() == fg.shape[1] - 1
                ),
            }
        )
    return blobs


def test_rendered_shapes_match_the_scene_and_do_not_overlap():
    cfg = WorldConfig()
    for index in range(60):
        record, image = make_record(index, 5, "train", cfg)
        objects = record["meta"]["objects"]
        blobs = _blobs(image, cfg.background)
        # Overlapping or touching shapes would merge into one blob.
        assert len(blobs) == len(objects), record["qid"]
        for o in objects:
            (blob,) = [b for b in blobs if abs(b["cx"] - o["x"]) < 1.5 and abs(b["cy"] - o["y"]) < 1.5]
            assert not blob["touches_border"]
            assert blob["color"] == synthetic.COLORS[o["color"]]
            # Share of the bounding box covered: square 1, circle pi/4, triangle about 1/2.
            lo, hi = {"square": (0.95, 1.0), "circle": (0.7, 0.88), "triangle": (0.4, 0.65)}[o["shape"]]
            assert lo <= blob["fill"] <= hi, (record["qid"], o, blob["fill"])
        if len(objects) > 1:
            area = {(b["cx"], b["cy"]): b["area"] for b in blobs}
            by_size: dict[str, list[int]] = {"large": [], "small": []}
            for o in objects:
                by_size[o["size"]] += [
                    a for (cx, cy), a in area.items() if abs(cx - o["x"]) < 1.5 and abs(cy - o["y"]) < 1.5
                ]
            assert min(by_size["large"]) > 1.5 * max(by_size["small"])


def test_objects_sorted_left_to_right_with_one_large():
    for record in _records(200):
        objects = record["meta"]["objects"]
        xs = [o["x"] for o in objects]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)
        assert [o["size"] for o in objects].count("large") == 1
        assert 1 <= len(objects) <= 6


# --- determinism and files -----------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a = _tree(generate(tmp_path / "a", 25, seed=3, split="val").parent)
    b = _tree(generate(tmp_path / "b", 25, seed=3, split="val").parent)
    c = _tree(generate(tmp_path / "c", 25, seed=4, split="val").parent)
    assert len(a) == 26 and a == b
    assert a.keys() == c.keys()
    differing = [name for name in a if a[name] != c[name]]
    assert "val.jsonl" in differing and len(differing) >= 20


def test_rerun_is_idempotent_and_leaves_no_temp_files(tmp_path):
    path = generate(tmp_path, 10, seed=1)
    first = _tree(tmp_path)
    assert generate(tmp_path, 10, seed=1) == path == tmp_path / "train.jsonl"
    assert _tree(tmp_path) == first
    assert not [name for name in first if ".tmp" in name]


def test_jsonl_matches_records_made_alone_in_any_order(tmp_path):
    path = generate(tmp_path, 12, seed=2, split="test")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for index in (11, 0, 7):
        record, image = make_record(index, 2, "test")
        assert lines[index] == record
        assert record["qid"] == f"test-{index:06d}" and record["images"] == [f"images/test/test-{index:06d}.png"]
        on_disk = Image.open(tmp_path / record["images"][0])
        assert on_disk.size == (112, 112) and np.array_equal(np.asarray(on_disk.convert("RGB")), np.asarray(image))


def test_splits_do_not_share_scenes():
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for index in range(150):
            record, image = make_record(index, 0, split)
            key = image.tobytes()
            assert seen.setdefault(key, split) == split, f"{split}-{index} repeats an image of {seen[key]}"


def test_image_size_override(tmp_path):
    record = json.loads(generate(tmp_path, 1, image_size=160).read_text().splitlines()[0])
    assert Image.open(tmp_path / record["images"][0]).size == (160, 160)
    assert record["meta"]["image_size"] == 160


# --- questions, answers, responses ---------------------------------------------------------------


def test_answers_agree_with_the_scene_for_every_kind():
    records = _records(500)
    kinds = Counter(r["meta"]["kind"] for r in records)
    assert set(kinds) == set(KINDS), f"kinds missing with default weights: {set(KINDS) - set(kinds)}"
    for r in records:
        assert r["answer"] == expected_answer(r["meta"]["kind"], r["problem"], r["meta"]["objects"]), r["qid"]
    # Yes/no should not be one-sided, and counting answers should not all be the same number.
    compare = Counter(r["answer"] for r in records if r["meta"]["kind"] == "compare_colors")
    assert min(compare["yes"], compare["no"]) >= 0.35 * sum(compare.values())
    assert len({r["answer"] for r in records if r["meta"]["kind"] == "more_than"}) >= 3


def test_response_parses_completely_and_carries_the_answer():
    for r in _records(300, seed=9):
        parsed = pebr_format.parse_response(r["response"])
        assert parsed.is_complete, (r["qid"], parsed.missing)
        assert parsed.answer == r["answer"]
        assert parsed.description == r["description"]
        assert len(parsed.steps) >= 2
        assert 40 <= len(r["response"].split()) <= 140, r["qid"]
        assert pebr_format.INSTRUCTION not in r["problem"]


def test_keywords_are_the_colour_shape_and_count_words_of_the_description():
    for r in _records(200, seed=4):
        words = re.findall(r"[a-z]+", r["description"].lower())
        expected = [w for w in dict.fromkeys(words) if w in COLOR_WORDS + SHAPE_WORDS]
        count_word = ["one", "two", "three", "four", "five", "six"][len(r["meta"]["objects"]) - 1]
        assert r["key_words"] == [count_word] + expected
        assert all(k in words for k in r["key_words"])


def test_hand_built_scene():
    scene = Scene(
        (
            SceneObject("circle", "red", "large", 20, 30, 18),
            SceneObject("square", "blue", "small", 55, 80, 11),
            SceneObject("triangle", "blue", "small", 85, 40, 11),
        ),
        112,
    )
    assert describe(scene) == (
        "There are three shapes. From left to right: a large red circle, a small blue square and a small blue triangle."
    )
    assert keywords(scene) == ["three", "red", "circle", "blue", "square", "triangle"]
    rng = np.random.default_rng(0)
    kinds = ("largest_color", "largest_shape", "count_total", "most_common_color")
    answers = {kind: make_question(scene, rng, kind=kind) for kind in kinds}
    assert {k: q.answer for k, q in answers.items()} == {
        "largest_color": "red",
        "largest_shape": "circle",
        "count_total": "3",
        "most_common_color": "blue",
    }
    assert answers["count_total"].steps[-1] == "Counting them one by one gives 1, 2, 3, so the total is 3."
    single = Scene((SceneObject("square", "green", "large", 50, 50, 18),), 112)
    assert describe(single) == "There is one shape: a large green square."


def test_tie_falls_back_to_another_kind():
    tie = Scene(
        (SceneObject("circle", "red", "large", 30, 30, 18), SceneObject("square", "blue", "small", 80, 80, 11)), 112
    )
    q = make_question(tie, np.random.default_rng(1), kind="most_common_color")
    assert q.kind != "most_common_color"
    assert q.answer == expected_answer(q.kind, q.question, [o.to_dict() for o in tie.objects])


def test_kind_weights_select_kinds():
    cfg = WorldConfig(kind_weights=(("count_shape", 1.0), ("largest_color", 0.0)))
    assert {r["meta"]["kind"] for r in _records(30, cfg=cfg)} == {"count_shape"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind_weights": (("colour_of_sky", 1.0),)}, "colour_of_sky"),
        ({"kind_weights": (("count_total", 0.0),)}, "not all 0"),
        ({"large_radius": 60}, "does not fit"),
        ({"min_objects": 4, "max_objects": 2}, "min_objects"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WorldConfig(**kwargs)


def test_crowded_scene_fails_with_advice():
    cfg = WorldConfig(image_size=64, min_objects=12, max_objects=12, large_radius=12)
    with pytest.raises(ValueError, match="lower max_objects"):
        make_scene(np.random.default_rng(0), cfg)


def test_render_draws_on_the_configured_background():
    cfg = WorldConfig(background=(200, 210, 220))
    image = render(make_scene(np.random.default_rng(0), cfg), cfg)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (200, 210, 220)


# --- tokenizer corpus and CLI ----------------------------------------------------------------------


def test_corpus_covers_instruction_and_every_kind():
    texts = list(corpus(1 + 2 * len(KINDS), seed=0))
    assert len(texts) == 1 + 2 * len(KINDS) and len(list(corpus(4))) == 4 and list(corpus(0)) == []
    assert texts[0] == pebr_format.INSTRUCTION
    users, responses = texts[1::2], texts[2::2]
    assert all(u.startswith(pebr_format.INSTRUCTION + "\n\n") for u in users)
    assert all(pebr_format.parse_response(t).is_complete for t in responses)
    assert sorted(kind_of(u.split("\n\n", 1)[1]) for u in users) == sorted(KINDS)
    assert list(corpus(7, seed=0)) == texts[:7]


def test_cli_writes_requested_splits(tmp_path, capsys):
    synthetic.main(["--out", str(tmp_path), "--train", "4", "--val", "2", "--test", "0", "--seed", "5"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["train", "val"]
    assert "4 records" in lines[0] and sum(int(n) for n in re.findall(r"=(\d+)", lines[0])) == 4
    assert len((tmp_path / "val.jsonl").read_text().splitlines()) == 2
    assert not (tmp_path / "test.jsonl").exists()
    assert len(list((tmp_path / "images" / "train").glob("*.png"))) == 4


def test_cli_rl_pool_alone_is_its_own_split(tmp_path, capsys):
    synthetic.main(["--out", str(tmp_path), "--train", "0", "--val", "0", "--test", "0", "--rl", "3"])
    assert capsys.readouterr().out.startswith("rl: 3 records")
    rows = [json.loads(line) for line in (tmp_path / "rl.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in rows] == ["rl-000000", "rl-000001", "rl-000002"]
    train, _ = synthetic.make_record(0, seed=0, split="train")
    assert rows[0]["meta"]["objects"] != train["meta"]["objects"]  # its own seed stream, not train's records
    assert not (tmp_path / "train.jsonl").exists()
