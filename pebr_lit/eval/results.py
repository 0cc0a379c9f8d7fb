"""Evaluation result files: per-benchmark JSON, JSONL rows and markdown tables, plus an overall summary.

For each benchmark ``<name>``: ``<name>.jsonl`` (one scored row per question, in file order: qid,
answer, response, graded prediction, correct, meta), ``<name>.json`` (its metrics and breakdowns)
and ``<name>.md``; for the run: ``results.json`` (every benchmark plus the run's settings) and
``results.md`` (a summary table, then each benchmark's tables). Rates are fractions in JSON and
percentages in markdown.

Left out on purpose: computing the numbers (each adapter's ``aggregate``) and gathering rows across
processes (``modules.evaluation``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def fmt(value: Any) -> str:
    """Markdown cell: rates (floats) as percentages with one decimal, counts as they are, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.1f}"
    return str(value)


def _table(header: list[str], lines: Iterable[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def benchmark_markdown(name: str, result: dict[str, Any]) -> str:
    """One benchmark: its metrics, then a table per breakdown (value -> metrics)."""
    parts = [
        f"## {name}",
        "",
        "Rates in percent; counts (n, ...) as numbers.",
        "",
        _table(["metric", "value"], ([k, fmt(v)] for k, v in result["metrics"].items())),
    ]
    for field, groups in result.get("breakdown", {}).items():
        if not groups:
            continue
        columns = list(next(iter(groups.values())))
        parts += [
            "",
            f"### {name} by {field}",
            "",
            _table(
                [field, *columns],
                ([str(value), *(fmt(stats.get(c)) for c in columns)] for value, stats in groups.items()),
            ),
        ]
    return "\n".join(parts) + "\n"


def summary_markdown(results: dict[str, dict[str, Any]], reference: dict[str, float] | None = None) -> str:
    """One row per benchmark (questions, accuracy, its headline metrics) and the mean accuracy over benchmarks.

    ``reference``: published scores in percent (e.g. the paper's table) keyed by benchmark name (compared
    with accuracy) or ``"<benchmark>.<metric>"``; each becomes a row below its benchmark with the difference.
    """
    lines, accuracies = [], []
    for name, result in results.items():
        metrics = result["metrics"]
        extra = ", ".join(f"{k} {fmt(metrics.get(k))}" for k in result.get("headline", ()) if k != "accuracy")
        lines.append([name, str(metrics.get("n", "-")), fmt(metrics.get("accuracy")), extra or "-"])
        if metrics.get("accuracy") is not None:
            accuracies.append(metrics["accuracy"])
        for key, value in (reference or {}).items():
            bench, _, metric = key.partition(".")
            if bench == name:
                ours = metrics.get(metric or "accuracy")
                diff = f"{100 * ours - value:+.1f} points" if isinstance(ours, (int, float)) else "-"
                lines.append(
                    [
                        f"{name} (reference {metric or 'accuracy'})",
                        "-",
                        f"{value:.1f}" if not metric else "-",
                        f"{metric} {value:.1f}; this run {diff}" if metric else f"this run {diff}",
                    ]
                )
    if len(accuracies) > 1:
        lines.append(["mean over benchmarks", "-", fmt(sum(accuracies) / len(accuracies)), "-"])
    return _table(["benchmark", "questions", "accuracy (%)", "headline metrics (%)"], lines) + "\n"


def write_results(
    out_dir: str | Path,
    results: dict[str, dict[str, Any]],
    rows: dict[str, list[dict[str, Any]]],
    settings: dict[str, Any],
    reference: dict[str, float] | None = None,
) -> Path:
    """Write every file named in the module docstring under ``out_dir``; returns the summary's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows[name])
        (out / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (out / f"{name}.md").write_text(benchmark_markdown(name, result), encoding="utf-8")
    summary = {"settings": settings, "benchmarks": results}
    (out / "results.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    body = "\n".join(benchmark_markdown(name, result) for name, result in results.items())
    path = out / "results.md"
    path.write_text(f"# Evaluation results\n\n{summary_markdown(results, reference)}\n{body}", encoding="utf-8")
    return path
