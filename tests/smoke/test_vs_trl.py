"""Smoke: ``benchmarks/vs_trl.py`` runs both tools at the smallest shape and reports sane figures.

Two prompts x 2 responses x <= 4 new tokens, 2 timed steps, one run per tool, each in its own process
(the script's own launcher). Checked: every figure the JSON carries is a finite number in its range (step
times > 0, tokens per step in ``(0, B*G*L]``, rewards in the reward's ``[0, 1]``, peak RSS > 0) and the
ratio is pebr's median over TRL's. Skipped where the bench extra (TRL) is not installed.

Left out on purpose: whether the ratio meets issue #17's goal (a figure, printed by the script, not a test).
"""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("trl", reason="TRL is the benchmark-only extra: pip install -e '.[bench]'")

from benchmarks.vs_trl import TOOLS, main  # noqa: E402

B, G, L = 2, 2, 4  # two prompts of different lengths: left padding is exercised
STEPS = 2


@pytest.mark.slow
def test_vs_trl_reports_sane_figures(tmp_path):
    path = tmp_path / "vs_trl.json"
    argv = ["--shapes", f"{B}x{G}x{L}", "--steps", str(STEPS), "--warmup", "0", "--repeats", "1"]
    main([*argv, "--threads", "1", "--json", str(path)])
    report = json.loads(path.read_text())
    assert report["conditions"]["steps"] == STEPS
    shape = report["shapes"][f"{B}x{G}x{L}"]
    for tool in TOOLS:
        figures = shape[tool]
        assert len(shape["runs"][tool]) == 1
        assert len(shape["runs"][tool][0]["step_seconds"]) == STEPS
        assert all(s > 0 for s in shape["runs"][tool][0]["step_seconds"]), tool
        assert 0 < figures["median_step_s"] < 600, tool
        assert 0 < figures["tokens_per_step"] <= B * G * L, tool  # at least one token per response
        assert 0 <= figures["mean_reward"] <= 1 and 0 <= figures["final_reward"] <= 1, tool
        assert figures["peak_rss_mib"] > 0, tool
        assert all(math.isfinite(v) for v in (figures["median_step_s"], figures["tokens_per_step"])), tool
    expected = shape["pebr"]["median_step_s"] / shape["trl"]["median_step_s"]
    assert shape["ratio_pebr_over_trl"] == pytest.approx(expected, rel=1e-12)
