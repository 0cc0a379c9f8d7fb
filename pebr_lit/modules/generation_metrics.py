"""GenerationMetrics: format rate and accuracy of generated responses, graded and averaged one way in every stage.

SFT validation/test, GRPO validation/test and difficulty sampling all grade a response with the
reward functions of ``rewards.components``: ``format_rate`` is ``format_reward`` (1 when all four
sections are present and non-empty), ``accuracy`` is ``accuracy_reward`` with the default grader
(``rewards.grading.grade``). So ``val/accuracy`` means one thing in every stage by construction; a
stage reward with another grader shows its own view as ``val/reward/accuracy``. The running means are
torchmetrics ``MeanMetric``s, exact over uneven batches and synced across processes at epoch end.

Left out on purpose: generation (the modules), reward components other than these two (``rewards``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning import LightningModule
from torchmetrics import MeanMetric

from pebr_lit.rewards.components import accuracy_reward, format_reward


def grade_responses(texts: Sequence[str], answers: Sequence[str]) -> dict[str, list[float]]:
    """Per-response ``format_rate`` and ``accuracy`` (1.0/0.0) of ``texts`` against ground truths ``answers``."""
    return {
        "format_rate": [format_reward(t) for t in texts],
        "accuracy": [accuracy_reward(t, a) for t, a in zip(texts, answers)],
    }


class GenerationMetrics(torch.nn.Module):
    """Running means of format rate, accuracy and response length per split, logged as ``<split>/<name>``.

    Args:
        length_name: Name of the mean response length in tokens (kept per stage for existing logs:
            SFT ``response_tokens``, GRPO ``response_length``).
        splits: Splits that log generation metrics.
    """

    def __init__(self, length_name: str = "response_tokens", splits: Sequence[str] = ("val", "test")) -> None:
        super().__init__()
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
        values = {name: torch.tensor(v, device=device) for name, v in grade_responses(texts, answers).items()}
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
