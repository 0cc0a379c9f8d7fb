"""A stage reward that needs inputs its stage module does not compute is refused when the module is built."""

from __future__ import annotations

import pytest

from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.modules.perception import PerceptionGRPO
from pebr_lit.modules.reasoning import ReasoningGRPO
from pebr_lit.rewards.stages import PerceptionReward, ReasoningReward


@pytest.mark.parametrize("module", [GRPOModule, ReasoningGRPO])
def test_a_clip_reward_outside_the_perception_stage_is_refused_at_construction(policy, module):
    with pytest.raises(ValueError, match=r"reward=PerceptionReward: needs clip_similarity.*PerceptionGRPO"):
        module(policy=policy, reward=PerceptionReward())


def test_the_perception_stage_provides_what_its_reward_needs(policy):
    assert set(PerceptionReward.extra_inputs) <= set(PerceptionGRPO.provides)
    assert ReasoningReward.extra_inputs == () and not ReasoningReward.needs_clip
    ReasoningGRPO(policy=policy, reward=ReasoningReward())  # nothing extra needed: builds
