"""GenerationMetrics: the one grading and averaging of generated responses for SFT, GRPO and sampling."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.format.response import render_response
from pebr_lit.modules.generation_metrics import GenerationMetrics, grade_responses
from pebr_lit.rewards.grading import mathruler_grade
from pebr_lit.rewards.rules import AuthorsRules


def full(answer: str) -> str:
    return render_response("A red square.", "Count it.", ["One square."], answer)


class _Logger:
    """Stands in for a LightningModule's ``log``: records name -> metric object."""

    def __init__(self) -> None:
        self.logged: dict[str, object] = {}

    def log(self, name, value, **kwargs) -> None:
        assert kwargs["on_epoch"] and not kwargs["on_step"]
        self.logged[name] = value


def test_grading_is_format_and_accuracy_per_response():
    scores = grade_responses([full("3"), full("4"), "3"], ["3", "3", "3"])
    # A bare "3" has no answer heading, so no answer (format.final_answer.TRAINING), as in the rewards.
    assert scores == {"format_rate": [1.0, 1.0, 0.0], "accuracy": [1.0, 0.0, 0.0]}


def test_means_are_exact_over_uneven_batches():
    metrics, module = GenerationMetrics(length_name="response_length"), _Logger()
    metrics.log(module, "val", [full("3")], ["3"], torch.tensor([10]))
    metrics.log(module, "val", [full("4"), "x", "y"], ["3", "3", "3"], torch.tensor([2, 4, 6]))
    # 4 responses: one correct (1/4), two with the format (2/4), lengths (10 + 2 + 4 + 6) / 4 = 5.5.
    values = {name: float(metric.compute()) for name, metric in module.logged.items()}
    assert values == pytest.approx({"val/accuracy": 0.25, "val/format_rate": 0.5, "val/response_length": 5.5})


def test_grading_follows_the_rules_it_is_given():
    restated, bare = "### The final answer is: 4\n### The final answer is: 3", "  3 "
    # Authors: the first answer line "4" is wrong; with no_section: none the bare "3" has no answer heading, so no
    # answer; neither has the four headings. With the scripts' whole-response fallback (the default) it is right.
    assert grade_responses([restated, bare], ["3", "3"], AuthorsRules(no_section="none"), mathruler_grade) == {
        "format_rate": [0.0, 0.0],
        "accuracy": [0.0, 0.0],
    }
    scripts = AuthorsRules()
    assert grade_responses([restated, bare], ["3", "3"], scripts, mathruler_grade)["accuracy"] == [0.0, 1.0]
    # pebr-lit (the default): the last answer section "3" is right.
    assert grade_responses([restated, bare], ["3", "3"])["accuracy"] == [1.0, 0.0]
    metrics, module = GenerationMetrics(rules=scripts, grader=mathruler_grade), _Logger()
    metrics.log(module, "val", [restated, bare], ["3", "3"], torch.tensor([1, 3]))
    assert float(module.logged["val/accuracy"].compute()) == pytest.approx(0.5)
