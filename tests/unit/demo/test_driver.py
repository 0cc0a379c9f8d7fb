"""The demo driver: order by needs, markers and skipping on rerun, failures named with their log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pebr_lit.demo import driver as demo
from pebr_lit.demo.steps import DemoSizes, Step, demo_steps


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def append(name: str) -> tuple[str, ...]:
    # Each step appends its name to order.txt, so the file shows the order the steps ran in.
    return py(f"open('order.txt', 'a').write('{name}\\n'); print('did {name}')")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_steps_run_after_their_needs_and_are_skipped_when_done(in_tmp):
    steps = [Step("c", append("c"), ("b",)), Step("a", append("a")), Step("b", append("b"), ("a",))]
    assert demo.run_steps(steps, jobs=2, cores=2, echo=lambda s: None) == 0
    assert Path("order.txt").read_text().split() == ["a", "b", "c"]
    marker = json.loads(Path("runs/demo/steps/b.json").read_text())
    assert marker["summary"] == "did b" and marker["command"][-1].startswith("open(")
    said = []
    assert demo.run_steps(steps, jobs=2, cores=2, echo=said.append) == 0
    assert Path("order.txt").read_text().split() == ["a", "b", "c"]  # nothing ran again
    assert said == ["[done earlier] c: did c", "[done earlier] a: did a", "[done earlier] b: did b"]


def test_a_failing_step_stops_the_demo_naming_the_step_and_its_log(in_tmp, capsys):
    steps = [
        Step("ok", append("ok")),
        Step("bad", py("import sys; print('boom happened'); sys.exit(3)"), ("ok",)),
        Step("after", append("after"), ("bad",)),
    ]
    assert demo.run_steps(steps, jobs=1, cores=1) == 1
    err = capsys.readouterr().err
    assert "step 'bad' failed (exit 3)" in err and "runs/demo/logs/bad.log" in err and "boom happened" in err
    assert Path("order.txt").read_text().split() == ["ok"]
    assert not Path("runs/demo/steps/bad.json").exists()
    # Rerun after the fix: 'ok' is not redone, 'bad' and 'after' run.
    fixed = [steps[0], Step("bad", append("bad"), ("ok",)), steps[2]]
    assert demo.run_steps(fixed, jobs=1, cores=1, echo=lambda s: None) == 0
    assert Path("order.txt").read_text().split() == ["ok", "bad", "after"]


def test_unknown_need_is_an_error(in_tmp):
    with pytest.raises(ValueError, match="needs unknown step"):
        demo.run_steps([Step("a", append("a"), ("ghost",))], jobs=1, cores=1)


def test_steps_cover_the_whole_recipe_and_their_needs_exist():
    steps = demo_steps(DemoSizes(), python="python", root=Path("/repo"))
    names = [s.name for s in steps]
    for name in (
        "assets",
        "data",
        "clip",
        "sft",
        "sample",
        "tiers",
        "stage1",
        "stage2",
        "stage2_only",
        "eval_sft",
        "eval_stage1",
        "eval_stage2",
        "eval_stage2_only",
        "report",
    ):
        assert name in names
    assert "stage1_no_length" not in names  # the length ablation: two equal curves at this scale (docs/demo.md)
    for i, step in enumerate(steps):
        assert all(names.index(n) < i for n in step.needs), step.name  # priority order respects needs
    by = {s.name: s for s in steps}
    assert by["stage2"].argv[:4] == ("python", "/repo/cli.py", "fit", "--config")
    assert "runs/demo/stage1/checkpoints/last.ckpt" in by["eval_stage1"].argv
    assert (
        by["stage2_only"].argv[by["stage2_only"].argv.index("--model.init_args.init_from") + 1]
        == "runs/demo/sft/checkpoints/last.ckpt"
    )


def test_a_run_directory_with_other_settings_is_refused(in_tmp):
    demo._check_same_demo({"train": 1, "seed": 0})
    demo._check_same_demo({"train": 1, "seed": 0})  # same settings: continue
    with pytest.raises(SystemExit, match=r"other settings \(train; see"):
        demo._check_same_demo({"train": 2, "seed": 0})


def test_until_keeps_a_step_and_what_it_needs():
    steps = demo_steps(DemoSizes(), python="python", root=Path("/repo"))
    assert [s.name for s in demo._upto(steps, "tiers")] == ["assets", "data", "sft", "sample", "tiers"]
    with pytest.raises(SystemExit, match="not a demo step"):
        demo._upto(steps, "stage3")
