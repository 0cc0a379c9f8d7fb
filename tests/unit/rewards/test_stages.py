"""Stage rewards: hand-derived perception and reasoning totals, input checks, class_path choice, fuzzed totals."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pebr_lit.rewards.grading import math_verify_grade
from pebr_lit.rewards.rules import PebrLitRules
from pebr_lit.rewards.stages import PerceptionReward, ReasoningReward, StageReward
from tests.helpers.responses import full, in_unit, keyword_lists, texts


def test_perception_total_by_hand() -> None:
    responses = [full(), "3"]
    out = PerceptionReward()(
        responses,
        answers=["3", "3"],
        key_words=[["red", "circle", "green", "two"], ["red"]],
        num_tokens=[1024, 100],
        clip_similarity=torch.tensor([0.2, 0.9]),
    )
    # Response 0: clip 0.2/0.4 = 0.5; keywords red, circle(s), two of 4 = 0.75; format 1; length 512/1024 = 0.5.
    #   total = 0.4*0.5 + 0.4*0.75 + 0.1*1 + 0.1*0.5 = 0.2 + 0.3 + 0.1 + 0.05 = 0.65 (accuracy 1, weight 0).
    # Response 1: no description -> clip 0 despite s=0.9, keyword 0; format 0; length 1: total 0.1; no answer
    #   heading, so no answer: accuracy 0 (format.final_answer.TRAINING).
    assert set(out) == {"total", "clip", "keyword", "format", "length", "accuracy"}
    assert out["total"].tolist() == pytest.approx([0.65, 0.1])
    assert out["clip"].tolist() == [0.5, 0.0]
    assert out["keyword"].tolist() == [0.75, 0.0]
    assert out["format"].tolist() == [1.0, 0.0]
    assert out["length"].tolist() == [0.5, 1.0]
    assert out["accuracy"].tolist() == [1.0, 0.0]
    assert out["total"].dtype == torch.float32 and out["total"].shape == (2,)


def test_perception_options_reach_the_components() -> None:
    text = full("The artist considered it.", rationale="Red everywhere.")
    kwargs = dict(answers=["0"], key_words=[["red"]], num_tokens=[10], clip_similarity=[0.1])
    assert PerceptionReward()([text], **kwargs)["keyword"].item() == 0.0
    rules = PebrLitRules(description_only=False, whole_word=False)
    authors = PerceptionReward(rules=rules, clip_threshold=0.2, accuracy=0.5)
    out = authors([text], **kwargs)
    # keyword 1 (substring anywhere); clip 0.1/0.2 = 0.5; format 1; length 1; accuracy 0 ("3" vs "0").
    assert out["keyword"].item() == 1.0
    assert out["total"].item() == pytest.approx(0.4 * 0.5 + 0.4 * 1 + 0.1 + 0.1 + 0.5 * 0)


def test_reasoning_total_by_hand() -> None:
    out = ReasoningReward()([full(), "3", full(answer="4")], answers=["3", "3", "3"])
    # full & right: 0.9 + 0.1 = 1.0; a bare "3" has no answer heading, so no answer and no format: 0;
    # full & wrong: 0.1.
    assert out["total"].tolist() == pytest.approx([1.0, 0.0, 0.1])
    assert set(out) == {"total", "accuracy", "format"}
    assert not ReasoningReward.needs_clip and PerceptionReward.needs_clip


def test_stage_rewards_check_their_inputs_and_weights() -> None:
    with pytest.raises(ValueError, match=r"^PerceptionReward\.keyword=-0\.1: "):
        PerceptionReward(keyword=-0.1)
    with pytest.raises(ValueError, match=r"^ReasoningReward\..*=0: all weights are 0"):
        ReasoningReward(accuracy=0.0, format=0.0)
    with pytest.raises(ValueError, match="clip_similarity"):
        PerceptionReward()(["x"], answers=["1"], key_words=[[]], num_tokens=[1])
    with pytest.raises(ValueError, match="answers has 1 entries for 2 responses"):
        ReasoningReward()(["x", "y"], answers=["1"])


def test_stage_rewards_are_chosen_by_class_path() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--reward", type=StageReward)
    cfg = parser.parse_object(
        {
            "reward": {
                "class_path": "pebr_lit.rewards.stages.ReasoningReward",
                "init_args": {"accuracy": 0.8, "grader": "pebr_lit.rewards.grading.math_verify_grade"},
            }
        }
    )
    reward = parser.instantiate_classes(cfg).reward
    assert isinstance(reward, ReasoningReward) and reward.grader is math_verify_grade
    assert reward.weights == {"accuracy": 0.8, "format": 0.1}


similarities = st.one_of(st.floats(-2, 2), st.just(math.nan))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, keyword_lists, st.integers(0, 5000), similarities), max_size=4))
def test_fuzz_stage_totals_within_weight_sum(rows: list[tuple[str, list[str], int, float]]) -> None:
    responses = [r[0] for r in rows]
    perception = PerceptionReward(accuracy=0.2)
    out = perception(
        responses,
        answers=["3"] * len(rows),
        key_words=[r[1] for r in rows],
        num_tokens=[r[2] for r in rows],
        clip_similarity=[r[3] for r in rows],
    )
    reasoning = ReasoningReward()(responses, answers=["3"] * len(rows))
    for result, stage in ((out, perception), (reasoning, ReasoningReward())):
        total = result["total"]
        assert total.shape == (len(rows),) and bool(torch.isfinite(total).all())
        assert bool((total >= 0).all()) and bool((total <= sum(stage.weights.values()) + 1e-6).all())
        for name in stage.weights:
            assert all(in_unit(v) for v in result[name].tolist())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(texts, keyword_lists, st.integers(0, 5000), similarities, texts), min_size=1, max_size=3),
    st.sampled_from(["pebr_lit", "authors"]),
    st.floats(1e-3, 1.0),
)
def test_fuzz_every_component_stays_in_its_documented_range(rows, rules_name, threshold) -> None:
    # The range the reward checks (modules.reward_health) hold every value to: no built-in reward is ever flagged.
    from pebr_lit.modules.reward_health import RewardChecks, RewardHealth
    from pebr_lit.rewards.rules import AuthorsRules

    rules = PebrLitRules() if rules_name == "pebr_lit" else AuthorsRules()
    responses = [r[0] for r in rows]
    inputs = {
        "answers": [r[4] for r in rows],
        "key_words": [r[1] for r in rows],
        "num_tokens": torch.tensor([float(r[2]) for r in rows]),
        "clip_similarity": torch.tensor([r[3] for r in rows]),
    }
    for reward in (
        PerceptionReward(rules=rules, clip_threshold=threshold, accuracy=0.1),
        ReasoningReward(rules=rules),
    ):
        given_inputs = inputs if reward.needs_clip else {"answers": inputs["answers"]}
        out = reward(responses, **given_inputs)
        for name, values in out.items():
            if name == "total":
                continue
            low, high = reward.value_range(name)
            assert bool(torch.isfinite(values).all()) and bool(((values >= low) & (values <= high)).all()), name
        checked, report = RewardHealth(reward, RewardChecks()).score(responses, given_inputs, [], inputs["num_tokens"])
        assert report.errors == 0, report.first
        assert torch.equal(checked["total"], out["total"])
