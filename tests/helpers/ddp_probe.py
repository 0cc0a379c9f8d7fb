"""DDPProbe: a callback that records what one rank of a GRPO run saw and did, as ``rank<r>.json``.

Per rollout step it keeps the prompt qids of the rank's batch, how many reward rows each qid got
(rows are scored where they were generated, so this is where its group lives) and a SHA-256 of the
trainable weights (at the start also the frozen ones) after the step's optimizer steps and the gradient
norm that each optimizer step saw (after clipping); per validation batch the qids and a per-row
value; and every ``self.log`` call with its local (pre-reduction) value. It doubles as a ``RewardTerm``
named ``probe`` whose value is a hash of the response text: rewards then vary within each group, so
the policy gets non-zero advantages even from an untrained model (ranks' local gradients differ),
and logged means differ between ranks, so a wrong cross-rank reduction cannot go unnoticed.

Left out on purpose: any checking (the tests compare the ranks' files with the CSV log).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torchmetrics import Metric

from pebr_lit.policy.fsdp import full_tensor
from pebr_lit.policy.lora import canonical_name


def text_value(text: str) -> float:
    """A deterministic pseudo-random value in [0, 1) for a response text."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


def named_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of names and bytes in name order (equal digests = bitwise-equal weights); whole tensors under FSDP2."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(full_tensor(tensors[name].detach()).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def weights_digest(module: torch.nn.Module, trainable_only: bool = True) -> str:
    """``named_digest`` of a module's (trainable) parameters."""
    return named_digest({n: p for n, p in module.named_parameters() if p.requires_grad or not trainable_only})


class DDPProbe(Callback):
    """Record one rank's prompts, reward rows, weights and logged values into ``out_dir``.

    Args:
        out_dir: Directory that receives ``rank<r>.json`` at teardown.
        weight: Weight of the ``probe`` reward component in the total reward.
    """

    name = "probe"

    def __init__(self, out_dir: str, weight: float = 1.0) -> None:
        self.out_dir = Path(out_dir)
        self.weight = weight
        self.steps: list[dict[str, Any]] = []
        self.val_rows: list[tuple[str, float]] = []
        self.logged: list[dict[str, Any]] = []
        self.reference_digest: str | None = None
        self.initial_digest: str | None = None
        self.frozen_digest: str | None = None

    def reward_values(self, texts: Sequence[str], num_tokens: torch.Tensor) -> torch.Tensor:
        """The ``RewardTerm`` hook: one hash value [N] per response."""
        return torch.tensor([text_value(t) for t in texts])

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        score, log = pl_module.score, pl_module.log

        def recording_score(texts: list[str], records: list[Any], num_tokens: torch.Tensor):
            if trainer.training:
                self.steps[-1]["rows"] = dict(Counter(r.qid for r in records))
            elif trainer.validating:
                self.val_rows.extend((r.qid, text_value(t)) for r, t in zip(records, texts))
            return score(texts, records, num_tokens)

        def recording_log(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
            phase = "train" if trainer.training else "val"
            # A torchmetrics object (generation metrics) has no value before Lightning computes it at epoch end.
            scalar = None if isinstance(value, Metric) else float(value)
            entry = {"phase": phase, "step": len(self.steps) - 1, "name": name, "value": scalar}
            self.logged.append({**entry, "batch_size": kwargs.get("batch_size")})
            log(name, value, *args, **kwargs)

        # Instance attributes shadow the methods; the DDP wrapper calls training_step on this same object.
        pl_module.score = recording_score
        pl_module.log = recording_log

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.initial_digest = weights_digest(pl_module.policy)
        # Frozen weights under their Hugging Face names (LoRA base layers included), e.g. to check init_from.
        frozen = {canonical_name(n): p for n, p in pl_module.policy.model.named_parameters() if not p.requires_grad}
        self.frozen_digest = named_digest(frozen) if frozen else None
        copy = getattr(getattr(getattr(pl_module, "reference", None), "strategy", None), "model", None)
        if copy is not None:  # a ModelCopyReference
            self.reference_digest = weights_digest(copy, trainable_only=False)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.steps.append({"qids": [r.qid for r in batch["records"]]})

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        # Runs after the module's gradient clipping: the norm the optimizer step sees.
        squares = [
            full_tensor(p.grad.detach()).float().pow(2).sum()
            for p in pl_module.policy.parameters()
            if p.grad is not None
        ]
        norm = float(torch.stack(squares).sum().sqrt()) if squares else 0.0  # none: a skipped (non-finite) step
        self.steps[-1].setdefault("grad_norms", []).append(norm)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.steps[-1]["digest"] = weights_digest(pl_module.policy)
        self.steps[-1]["global_step"] = trainer.global_step

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        report = {
            "rank": rank,
            "world_size": trainer.world_size,
            "initial_digest": self.initial_digest,
            "frozen_digest": self.frozen_digest,
            "reference_digest": self.reference_digest,
            "steps": self.steps,
            "val_rows": self.val_rows,
            "logged": self.logged,
        }
        tmp = self.out_dir / f"rank{rank}.json.tmp"
        tmp.write_text(json.dumps(report, indent=1))
        os.replace(tmp, self.out_dir / f"rank{rank}.json")
