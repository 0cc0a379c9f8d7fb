"""The rollout engine's log-probs against the trainer's: whether they are comparable, and their gap per update.

An engine that reports log-probs (sglang) is asked at set-up for them at the module's
``logprob_temperature``; when it reports another temperature the gap is not measured (one warning).
Otherwise every update logs ``train/engine_logprob_diff/*``, the |engine - trainer| gap on the update's
rollouts before the update, and warns when its mean passes the engine's ``logprob_tolerance``.

Left out on purpose: the gap statistics themselves (``rollout.logprob_gap``), the engines (``pebr_lit.rollout``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from pebr_lit.grpo.rounds import RolloutRound, update_rows
from pebr_lit.rollout import logprob_gap


def engine_logprobs_comparable(module: Any) -> bool:
    """Ask ``module``'s engine for log-probs at its ``logprob_temperature``; False (after one warning) if it gives
    others."""
    reported = module.rollout_engine.choose_logprob_temperature(module.logprob_temperature, module.sampling)
    if reported is None or math.isclose(reported, module.logprob_temperature):
        return True
    warnings.warn(
        f"{type(module).__name__}.logprob_temperature={module.logprob_temperature}: the rollout engine "
        f"{type(module.rollout_engine).__name__} reports log-probs at temperature {reported}, so they are not "
        "compared with the trainer's (no train/engine_logprob_diff). For an sglang server: start it with "
        "SGLANG_RETURN_ORIGINAL_LOGPROB=1 and set original_logprobs: true for temperature 1, without either for "
        "the sampling temperature; or set the engine's check_logprobs: false.",
        stacklevel=4,
    )
    return False


def engine_gap(module: Any, rounds: list[RolloutRound]) -> dict[str, float]:
    """|engine - trainer| log-prob gap on the update's rollouts, before the update, as loggable stats."""
    trainer = [
        r.old if r.old is not None else module._frozen_logprobs(r.prompts, r.ids, r.mask, r.rows, reference=False)
        for r in rounds
    ]
    gap = logprob_gap(
        update_rows(rounds, [r.engine_logprobs for r in rounds]),
        update_rows(rounds, trainer),
        update_rows(rounds, [r.mask for r in rounds]),
    )
    tolerance = module.rollout_engine.logprob_tolerance
    if gap.get("mean", 0.0) > tolerance:
        warnings.warn(
            f"rollout engine log-probs differ from the trainer's by more than logprob_tolerance={tolerance} nats per "
            "token (train/engine_logprob_diff/mean): check that the engine gets the weights (sync), dtype and image "
            "processor settings of the policy.",
            stacklevel=3,
        )
    return {f"engine_logprob_diff/{k}": v for k, v in gap.items()}
