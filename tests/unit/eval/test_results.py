"""Evaluation results: result files, per-benchmark and summary markdown, reference scores."""

from __future__ import annotations

from pebr_lit.eval.results import benchmark_markdown, fmt, summary_markdown, write_results


def test_result_files_and_markdown(tmp_path):
    result = {
        "metrics": {"accuracy": 0.5, "n": 2},
        "breakdown": {"task": {"geo": {"accuracy": 1.0, "n": 1}}},
        "headline": ["accuracy"],
    }
    hall = {
        "metrics": {"accuracy": 0.25, "qAcc": 0.125, "fAcc": None, "n": 4},
        "breakdown": {},
        "headline": ["qAcc", "fAcc", "aAcc"],
    }
    assert fmt(0.125) == "12.5" and fmt(3) == "3" and fmt(None) == "-"
    assert "| geo | 100.0 | 1 |" in benchmark_markdown("mathvista", result)
    summary = summary_markdown({"mathvista": result, "hallusionbench": hall})
    assert (
        "| mathvista | 2 | 50.0 | - |" in summary
        and "| hallusionbench | 4 | 25.0 | qAcc 12.5, fAcc -, aAcc - |" in summary
    )
    assert "| mean over benchmarks | - | 37.5 | - |" in summary  # (0.5 + 0.25) / 2
    rows = {"mathvista": [{"qid": "1", "correct": True}, {"qid": "2", "correct": False}], "hallusionbench": []}
    path = write_results(tmp_path / "out", {"mathvista": result, "hallusionbench": hall}, rows, {"sampling": {}})
    assert path.read_text().startswith("# Evaluation results")
    assert len((tmp_path / "out" / "mathvista.jsonl").read_text().splitlines()) == 2
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "results.json",
        "mathvista.json",
        "mathvista.md",
        "hallusionbench.jsonl",
    }


def test_summary_puts_reference_scores_beside_the_run():
    result = {"metrics": {"accuracy": 0.5, "n": 2}, "headline": ["accuracy"]}
    hall = {"metrics": {"accuracy": 0.25, "qAcc": 0.125, "n": 4}, "headline": ["qAcc", "aAcc"]}
    summary = summary_markdown(
        {"mathvista": result, "hallusionbench": hall},
        {"mathvista": 63.5, "hallusionbench.qAcc": 20.0, "hallusionbench.fAcc": 10.0},
    )
    assert "| mathvista (reference accuracy) | - | 63.5 | this run -13.5 points |" in summary  # 50.0 - 63.5
    assert "| hallusionbench (reference qAcc) | - | - | qAcc 20.0; this run -7.5 points |" in summary  # 12.5 - 20.0
    assert "| hallusionbench (reference fAcc) | - | - | fAcc 10.0; this run - |" in summary  # no fAcc in this run
    lines = summary.splitlines()
    assert lines.index("| mathvista | 2 | 50.0 | - |") + 1 == next(
        i for i, line in enumerate(lines) if "mathvista (reference" in line
    )
