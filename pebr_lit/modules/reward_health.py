"""RewardHealth: scoring in which a broken reward or grader is counted, named, kept out of the loss, and stops a run.

Per scored batch of N responses (``GRPOModule.score``, in training, validation and test):

- a reward that raises (the stage reward, or a ``RewardTerm`` callback): the batch is scored again
  response by response, and each response whose scoring raises gets 0 for every component of it;
- a value that is NaN or infinite, or outside its component's range (``StageReward.value_range``; a
  ``RewardTerm``: [0, 1]) when ``check_range``: replaced by 0, every component's failure value;
- the answer grader (the stage reward's ``grader``, wrapped in ``CheckedGrader``): one that raises, or
  returns anything but a verdict (a bool, or a number in [0, 1]: ``rewards.grading.verdict``), counts
  as a wrong answer and a failure.

When a value was replaced the ``total`` is recomputed from the cleaned components and the reward's
weights; a total that is still not finite is set to 0 and counted. Each failure is counted
(``RewardReport.errors``, logged by the module as ``<split>/reward_errors``); the first of a run is
warned about with the offending response; a training step whose failures exceed ``max_error_share``
of its responses stops the run (``TrainingStopped``) naming the first of them.

Left out on purpose: the rewards and graders themselves (pure, ``pebr_lit.rewards``), logging of the
values (``modules.grpo``), what a non-finite loss does (``modules.step_guard``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pebr_lit.modules.step_guard import TrainingStopped
from pebr_lit.rewards.components import Grader
from pebr_lit.rewards.grading import verdict
from pebr_lit.rewards.stages import StageReward

_SHOWN = 200  # characters of an offending response quoted in a message


@dataclass
class RewardChecks:
    """How ``GRPOModule`` treats reward failures (an option of the module, ``reward_checks``).

    Args:
        max_error_share: Reward failures per response of a training step above which the run stops
            (0 = stop on the first; 1 = stop only when there are more failures than responses).
        check_range: Count a component value outside its documented range (``StageReward.value_range``) as a
            failure; false accepts any finite value (a custom reward on another scale).
    """

    max_error_share: float = 0.25
    check_range: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_error_share <= 1.0:
            raise ValueError(
                f"RewardChecks.max_error_share={self.max_error_share!r}: must be a share in [0, 1]. "
                "Use e.g. 0.25 (a step where more than a quarter of the rewards failed stops the run)."
            )


@dataclass
class RewardReport:
    """The failures of one scored batch."""

    errors: int = 0
    first: str | None = None
    problems: list[str] = field(default_factory=list)  # the first few, for the messages

    def add(self, problem: str) -> None:
        self.errors += 1
        self.first = self.first or problem
        if len(self.problems) < 3:
            self.problems.append(problem)


class CheckedGrader:
    """A grader whose crashes and non-verdicts count as wrong answers and are recorded in ``failures``."""

    def __init__(self, grader: Grader) -> None:
        self.grader = grader
        self.failures: list[str] = []
        self.name = getattr(grader, "__qualname__", type(grader).__name__)

    def __call__(self, prediction: str, truth: str) -> bool:
        try:
            value = self.grader(prediction, truth)
        except Exception as err:  # noqa: BLE001 - any grader crash is recorded, never a failed step
            problem = f"raised {type(err).__name__}: {err}"
            self.failures.append(f"grader {self.name} {problem} on {_answer(prediction, truth)}")
            return False
        decided = verdict(value)
        if decided is None:
            problem = f"returned {value!r} (not a bool or a number in [0, 1])"
            self.failures.append(f"grader {self.name} {problem} on {_answer(prediction, truth)}")
            return False
        return decided


def _answer(prediction: object, truth: object) -> str:
    return f"the answer {str(prediction)[:_SHOWN]!r} (truth {str(truth)[:_SHOWN]!r})"


def _shown(text: object) -> str:
    return f"response {str(text)[:_SHOWN]!r}"


def _pick(value: Any, i: int) -> Any:
    """Entry ``i`` of a per-response input, kept a sequence of one."""
    if value is None or isinstance(value, str):
        return value
    return value[i : i + 1]


class RewardHealth:
    """Scores with ``reward`` (and reward terms) under ``checks``; wraps the reward's grader in ``CheckedGrader``."""

    def __init__(self, reward: StageReward, checks: RewardChecks) -> None:
        self.reward, self.checks = reward, checks
        grader = getattr(reward, "grader", None)
        if callable(grader) and not isinstance(grader, CheckedGrader):
            reward.grader = CheckedGrader(grader)
        self._warned = False

    def score(
        self, texts: Sequence[str], inputs: dict[str, Any], terms: Sequence[Any], num_tokens: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], RewardReport]:
        """The reward's components [N] and ``total`` [N] (plus each term's values), cleaned; and their failures."""
        report = RewardReport()
        grader = getattr(self.reward, "grader", None)
        name = type(self.reward).__name__
        rewards = self._robust(
            name, lambda t, kw: self.reward(t, **kw), texts, inputs, report, grader, [*self.reward.weights, "total"]
        )
        parts = {k: v for k, v in rewards.items() if k != "total"}
        if isinstance(grader, CheckedGrader):
            for problem in grader.failures:
                report.add(problem)
            grader.failures.clear()
        before = report.errors
        for key, values in parts.items():
            self._clean(f"{name}.{key}", values, self.reward.value_range(key), texts, report)
        if report.errors > before or "total" not in rewards:
            weights = self.reward.weights
            rewards["total"] = sum((w * parts[k] for k, w in weights.items() if k in parts), torch.zeros(len(texts)))
        for term in terms:
            values = self._robust(
                term.name,
                lambda t, kw, term=term: {"v": term.reward_values(t, kw["num_tokens"])},
                texts,
                {"num_tokens": num_tokens},
                report,
            )["v"]
            self._clean(term.name, values, getattr(term, "value_range", (0.0, 1.0)), texts, report)
            parts[term.name] = values
            rewards["total"] = rewards["total"] + term.weight * values
        self._clean(f"{name}.total", rewards["total"], (-float("inf"), float("inf")), texts, report)
        return {**parts, "total": rewards["total"]}, report

    def _robust(
        self,
        who: str,
        call: Callable[[Sequence[str], dict[str, Any]], dict[str, Any]],
        texts: Sequence[str],
        inputs: dict[str, Any],
        report: RewardReport,
        grader: Any = None,
        fallback: Sequence[str] = ("v",),
    ) -> dict[str, torch.Tensor]:
        """``call`` on the batch; when it raises, on each response alone, a raising response scoring 0 everywhere."""
        try:
            return {k: torch.as_tensor(v, dtype=torch.float32).reshape(-1) for k, v in call(texts, inputs).items()}
        except Exception:  # noqa: BLE001 - found again below, response by response
            pass
        if isinstance(grader, CheckedGrader):
            grader.failures.clear()  # the grader is asked again for every response
        rows: list[dict[str, Any] | None] = []
        for i, text in enumerate(texts):
            try:
                rows.append(call([text], {k: _pick(v, i) for k, v in inputs.items()}))
            except Exception as err:  # noqa: BLE001 - a reward crash on one response is that response's failure
                report.add(f"{who} raised {type(err).__name__}: {err} on {_shown(text)}")
                rows.append(None)
        names = next((list(r) for r in rows if r is not None), None) or list(fallback)
        return {
            k: torch.tensor([float(torch.as_tensor(r[k]).reshape(-1)[0]) if r is not None else 0.0 for r in rows])
            for k in names
        }

    def _clean(
        self,
        who: str,
        values: torch.Tensor,
        bounds: tuple[float, float],
        texts: Sequence[str],
        report: RewardReport,
    ) -> None:
        """Set ``values`` [N] that are not finite (or, with ``check_range``, outside ``bounds``) to 0, counting each."""
        low, high = bounds
        bad = ~torch.isfinite(values)  # [N]
        if self.checks.check_range:
            bad |= (values < low) | (values > high)
        for i in bad.nonzero().flatten().tolist():
            report.add(f"{who} = {float(values[i]):.6g} (range [{low:g}, {high:g}]) on {_shown(texts[i])}")
        values[bad] = 0.0

    def finish(self, report: RewardReport, responses: int, owner: str, training: bool) -> None:
        """Warn about the first failure of the run; stop a training step with too many (see top)."""
        if report.errors and not self._warned:
            self._warned = True
            warnings.warn(
                f"{owner}: a reward failed and scored 0 (counted as <split>/reward_errors): {report.first}",
                stacklevel=3,
            )
        share = report.errors / max(responses, 1)
        if training and report.errors and share > self.checks.max_error_share:
            raise TrainingStopped(
                f"{owner}: {report.errors} reward failures on {responses} responses in this step ({share:.0%}, over "
                f"reward_checks.max_error_share={self.checks.max_error_share}); the first: {report.first}. Make every "
                "reward component return a finite value in its range and every grader a bool (True = correct), or, "
                "for a custom reward on another scale, set reward_checks.check_range: false."
            )
