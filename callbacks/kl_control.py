"""KLController: the KL coefficient of a GRPO stage, fixed or adapted toward a target KL.

Fixed (``target: null``) pins ``module.loss.kl_coef`` to ``coef``. Adaptive follows Ziegler et al.
(2019): after each step, ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) / horizon``, so the
coefficient grows while the measured KL (``module.last_stats["kl"]``) is above target and shrinks
below it. The coefficient is saved in checkpoints so a resumed run continues from it.

Left out on purpose: the KL estimator and where KL enters the loss (``GRPOLoss``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class KLController(Callback):
    """Set the KL coefficient ``module.loss.kl_coef`` every step.

    Args:
        coef: Initial (or fixed) coefficient (authors: 0.01).
        target: Target KL per token; null keeps the coefficient fixed.
        horizon: Responsiveness: a sustained error changes the coefficient by at most 20 % per ``horizon`` steps.
        min_coef: Lower bound of the adaptive coefficient.
        max_coef: Upper bound of the adaptive coefficient.
    """

    def __init__(
        self,
        coef: float = 0.01,
        target: float | None = None,
        horizon: int = 100,
        min_coef: float = 1e-5,
        max_coef: float = 10.0,
    ) -> None:
        if coef < 0:
            raise ValueError(f"KLController.coef={coef!r}: must be >= 0. Use e.g. 0.01, or 0 for no KL term.")
        if target is not None and target <= 0:
            raise ValueError(
                f"KLController.target={target!r}: must be > 0. Give the KL to aim for, or null for a fixed coef."
            )
        if horizon < 1:
            raise ValueError(f"KLController.horizon={horizon!r}: must be >= 1 steps. Use e.g. 100.")
        if target is not None and coef == 0:
            raise ValueError(
                f"KLController.coef=0 with target={target!r}: an adaptive coefficient cannot start at 0 "
                "(it scales multiplicatively). Set coef > 0, e.g. 0.01, or target: null."
            )
        self.coef = coef
        self.target = target
        self.horizon = horizon
        self.min_coef = min_coef
        self.max_coef = max_coef

    @staticmethod
    def next_coef(coef: float, kl: float, target: float, horizon: int) -> float:
        """One adaptive update (pure): proportional error clipped to +-0.2, scaled by 1/horizon."""
        error = min(max(kl / target - 1.0, -0.2), 0.2)
        return coef * (1.0 + error / horizon)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.loss.kl_coef = self.coef

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        kl = pl_module.last_stats.get("kl")
        if self.target is not None and kl is not None:
            self.coef = min(max(self.next_coef(self.coef, kl, self.target, self.horizon), self.min_coef), self.max_coef)
        pl_module.loss.kl_coef = self.coef

    def state_dict(self) -> dict[str, Any]:
        return {"coef": self.coef}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.coef = float(state_dict["coef"])
