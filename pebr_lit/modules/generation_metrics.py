"""GenerationMetrics: format rate and accuracy of generated responses, graded and averaged one way in every stage.

SFT validation/test, GRPO validation/test and difficulty sampling all grade a response with the
format and accuracy rules of a rule set (``rewards.rules``): ``format_rate`` is ``rules.format``,
``accuracy`` is ``rules.accuracy`` with a grader. The rule set is the module's own: ``SFTModule.rules``
(with ``SFTModule.grader``, for validation and sampling alike) and, in GRPO, the stage reward's
``rules`` with those rules' own grader (``RewardRules.default_grader``: ``grade`` for ``PebrLitRules``,
``mathruler_grade`` for ``AuthorsRules``), so ``val/accuracy`` means one thing in every stage whose config
names the same rules (by default ``PebrLitRules``: all four sections present and non-empty; the last answer
section or its option letter); a stage reward with another grader shows its own view as
``val/reward/accuracy``. The running means are
torchmetrics ``MeanMetric``s, exact over uneven batches and synced across processes at epoch end.

Left out on purpose: generation (the modules), reward components other than these two (``rewards``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning import LightningModule
from torchmetrics import MeanMetric

from pebr_lit.rewards.components import Grader
from pebr_lit.rewards.rules import PebrLitRules, RewardRules


def grade_responses(
    texts: Sequence[str], answers: Sequence[str], rules: RewardRules | None = None, grader: Grader | None = None
) -> dict[str, list[float]]:
    """Per-response ``format_rate`` and ``accuracy`` (1.0/0.0) of ``texts`` against ground truths ``answers``,
    under ``rules`` (null = ``PebrLitRules()``) and ``grader`` (null = the rules' own)."""
    rules = rules if rules is not None else PebrLitRules()
    grader = grader if grader is not None else rules.default_grader()
    return {
        "format_rate": [rules.format(t) for t in texts],
        "accuracy": [rules.accuracy(t, a, grader) for t, a in zip(texts, answers)],
    }


class GenerationMetrics(torch.nn.Module):
    """Running means of format rate, accuracy and response length per split, logged as ``<split>/<name>``.

    Args:
        length_name: Name of the mean response length in tokens (kept per stage for existing logs:
            SFT ``response_tokens``, GRPO ``response_length``).
        splits: Splits that log generation metrics.
        rules: Format and accuracy rules; null = ``PebrLitRules()``.
        grader: Answer grader of the accuracy; null = the rules' own (``RewardRules.default_grader``).
    """

    def __init__(
        self,
        length_name: str = "response_tokens",
        splits: Sequence[str] = ("val", "test"),
        rules: RewardRules | None = None,
        grader: Grader | None = None,
    ) -> None:
        super().__init__()
        self.rules, self.grader = rules, grader
        self.names = ("format_rate", "accuracy", length_name)
        self.means = torch.nn.ModuleDict({f"{s}_{n}": MeanMetric() for s in splits for n in self.names})

    def log(
        self,
        module: LightningModule,
        split: str,
        texts: Sequence[str],
        answers: Sequence[str],
        lengths: torch.Tensor,
    ) -> None:
        """Grade responses ``texts`` [N] against ``answers`` [N] with token counts ``lengths`` [N]; log the means."""
        device = lengths.device
        values = {
            name: torch.tensor(v, device=device)
            for name, v in grade_responses(texts, answers, self.rules, self.grader).items()
        }
        values[self.names[2]] = lengths.float()  # [N]
        for name, value in values.items():
            metric = self.means[f"{split}_{name}"]
            metric.update(value)
            # The metric object, not a value: Lightning computes it (synced) at epoch end and resets it.
            module.log(
                f"{split}/{name}",
                metric,
                on_step=False,
                on_epoch=True,
                prog_bar=name != self.names[2],
                batch_size=len(texts),
            )
