"""What a GRPO checkpoint holds for an exact resume beyond Lightning's own: sampling random states, stage identity.

``save_resume_state`` / ``load_resume_state`` are the bodies of the module's ``on_save_checkpoint`` /
``on_load_checkpoint`` additions. A checkpoint gets ``pebr_rng`` (``{"world_size", "ranks": [state per
process]}``, each a ``rng.RandomStream`` state) and ``pebr_stage`` (``identity``). On resume (``fit`` only)
the identity is checked first, then each process continues its own stream; resumed on another number of
processes, the streams cannot be matched to ranks, so they start afresh with a warning (the run continues,
not bit-identically).

Left out on purpose: the rollout batch count and the data stream position (``modules.grpo`` and
``PromptDataModule``), Lightning's optimizer/loop state, and checkpoint files themselves.
"""

from __future__ import annotations

import warnings
from typing import Any

from lightning.pytorch.utilities import rank_zero_info

from pebr_lit.resume.identity import KEY as IDENTITY_KEY
from pebr_lit.resume.identity import check_identity, stage_identity
from pebr_lit.resume.rng import gather_states

RNG_KEY = "pebr_rng"


def current_identity(module: Any) -> dict[str, Any]:
    """The stage identity of ``module`` (a ``GRPOModule``) as built by this command."""
    strategy = getattr(module.reference, "strategy", None) if module.reference is not None else None
    return stage_identity(
        module.stage_init, str(module.policy.source), type(strategy).__name__ if strategy is not None else None
    )


def save_resume_state(module: Any, checkpoint: dict[str, Any]) -> None:
    """Add every process's sampling random state and the stage identity to ``checkpoint`` (all ranks call this)."""
    world = module.trainer.world_size if module._trainer is not None else 1
    states = gather_states(module.random_stream.state_dict(module.device), world)
    checkpoint[RNG_KEY] = {"world_size": world, "ranks": states}
    checkpoint[IDENTITY_KEY] = current_identity(module)


def load_resume_state(module: Any, checkpoint: dict[str, Any]) -> None:
    """Refuse a resume under another stage identity, then continue this process's saved random stream."""
    trainer = module._trainer
    if trainer is None or trainer.state.fn != "fit":  # validate/test/predict take any checkpoint's weights
        return
    for note in check_identity(checkpoint.get(IDENTITY_KEY), current_identity(module), trainer.ckpt_path):
        rank_zero_info(note)
    saved = checkpoint.get(RNG_KEY)
    if saved is None:
        warnings.warn(
            f"{trainer.ckpt_path}: no sampling random state in the checkpoint (written before pebr-lit saved one); "
            "rollouts after the resume are not those of an uninterrupted run.",
            stacklevel=2,
        )
        return
    if saved["world_size"] != trainer.world_size:
        warnings.warn(
            f"{trainer.ckpt_path}: saved by {saved['world_size']} processes, resumed on {trainer.world_size}: the "
            "sampling random states cannot be matched to processes, so they start afresh (the run goes on, but its "
            "rollouts are not those of an uninterrupted run). Resume on as many processes for an exact resume.",
            stacklevel=2,
        )
        return
    module.random_stream.load_state_dict(saved["ranks"][trainer.global_rank])
