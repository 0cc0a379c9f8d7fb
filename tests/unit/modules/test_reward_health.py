"""RewardHealth: a reward or grader that raises or gives NaN, inf or out-of-range values is counted, scores 0, stops."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbacks.length_penalty import LengthPenalty
from pebr_lit.modules.reward_health import CheckedGrader, RewardChecks, RewardHealth
from pebr_lit.modules.step_guard import TrainingStopped
from pebr_lit.rewards.grading import grade, verdict
from pebr_lit.rewards.rules import AuthorsRules
from pebr_lit.rewards.stages import PerceptionReward, ReasoningReward, StageReward
from tests.helpers.responses import full, texts


class Listed(StageReward):
    """Gives ``values[i]`` to response i (a value that is an exception is raised for that response)."""

    def __init__(self, values: Sequence[object]) -> None:
        super().__init__(signal=1.0)
        self.values = list(values)

    def components(self, responses: Sequence[str], **inputs: object) -> dict[str, list[float]]:
        out = []
        for r in responses:
            v = self.values[int(r)]
            if isinstance(v, Exception):
                raise v
            out.append(v)
        return {"signal": out}


class Term:
    name, weight = "term", 0.5

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def reward_values(self, texts, num_tokens) -> torch.Tensor:
        return torch.tensor([self.values[int(t)] for t in texts])


def score(reward, texts_, answers=None, terms=(), checks=None):
    health = RewardHealth(reward, checks or RewardChecks())
    inputs = {"answers": answers, "num_tokens": torch.full((len(texts_),), 10.0)}
    out, report = health.score(texts_, inputs, terms, inputs["num_tokens"])
    return health, out, report


@pytest.mark.parametrize("bad", [math.nan, math.inf, 3e38, -0.5])
def test_a_bad_component_value_scores_0_is_counted_and_never_reaches_the_total(bad):
    _, out, report = score(Listed([0.5, bad, 1.0]), ["0", "1", "2"])
    assert out["signal"].tolist() == [0.5, 0.0, 1.0] and out["total"].tolist() == [0.5, 0.0, 1.0]
    assert report.errors == 1 and report.first.startswith(f"Listed.signal = {bad} (range [0, 1]) on response '1'")


def test_without_the_range_check_a_large_finite_value_passes_and_nan_still_fails():
    checks = RewardChecks(check_range=False)
    _, out, report = score(Listed([3e38, math.nan]), ["0", "1"], checks=checks)
    assert out["total"].tolist() == pytest.approx([3e38, 0.0]) and report.errors == 1


def test_a_reward_raising_on_one_response_scores_that_one_0():
    _, out, report = score(Listed([0.25, ValueError("boom"), 0.75]), ["0", "1", "2"])
    assert out["total"].tolist() == [0.25, 0.0, 0.75] and out["signal"].tolist() == [0.25, 0.0, 0.75]
    assert report.errors == 1 and report.first == "Listed raised ValueError: boom on response '1'"


def test_a_reward_raising_everywhere_gives_every_component_0():
    _, out, report = score(Listed([KeyError("k")] * 2), ["0", "1"])
    assert out["total"].tolist() == [0.0, 0.0] and out["signal"].tolist() == [0.0, 0.0] and report.errors == 2


@pytest.mark.parametrize("returned", [math.nan, float("inf"), 2.0, -1.0, None, "yes", object()])
def test_a_grader_without_a_verdict_is_wrong_and_counted(returned):
    # NaN is truthy: read with bool() it made every response correct.
    reward = ReasoningReward(grader=lambda p, t: returned)
    _, out, report = score(reward, [full(answer="3"), full(answer="4")], answers=["3", "3"])
    assert out["accuracy"].tolist() == [0.0, 0.0] and report.errors == 2
    assert "returned" in report.first and "not a bool or a number in [0, 1]" in report.first


def test_a_raising_grader_is_wrong_counted_and_named():
    def broken(prediction, truth):
        raise RuntimeError("judge unreachable")

    reward = ReasoningReward(grader=broken)
    health, out, report = score(reward, [full(answer="3")], answers=["3"])
    assert out["accuracy"].tolist() == [0.0] and out["format"].tolist() == [1.0] and report.errors == 1
    assert "broken raised RuntimeError: judge unreachable on the answer '3' (truth '3')" in report.first
    assert isinstance(reward.grader, CheckedGrader)
    RewardHealth(reward, RewardChecks())  # wrapping again keeps one wrapper
    assert not isinstance(reward.grader.grader, CheckedGrader)


def test_good_graders_and_verdicts_pass_unchanged():
    reward = ReasoningReward(grader=lambda p, t: 1.0 if p == t else 0)  # numbers in [0, 1] are verdicts
    _, out, report = score(reward, [full(answer="3"), full(answer="4")], answers=["3", "3"])
    assert out["accuracy"].tolist() == [1.0, 0.0] and report.errors == 0


def test_a_reward_term_that_fails_is_counted_and_kept_out_of_the_total():
    _, out, report = score(Listed([0.5, 0.5]), ["0", "1"], terms=[Term([math.nan, 1.0])])
    assert out["term"].tolist() == [0.0, 1.0] and out["total"].tolist() == [0.5, 1.0] and report.errors == 1
    assert report.first.startswith("term = nan")


def test_authors_negative_clip_rewards_are_in_range():
    reward = PerceptionReward(rules=AuthorsRules())
    health = RewardHealth(reward, RewardChecks())
    inputs = {
        "answers": ["3"],
        "key_words": [["red"]],
        "num_tokens": torch.tensor([10.0]),
        "clip_similarity": torch.tensor([-0.9]),
    }
    out, report = health.score([full()], inputs, [], inputs["num_tokens"])
    assert out["clip"].item() == pytest.approx(-0.9 / 0.4) and report.errors == 0


def test_too_many_failures_stop_a_training_step_and_are_warned_once():
    health, _, report = score(Listed([0.5, math.nan, math.nan]), ["0", "1", "2"])
    with pytest.warns(UserWarning, match=r"^Probe: a reward failed and scored 0 .*Listed\.signal = nan"):
        health.finish(report, 3, "Probe", training=False)  # evaluation: counted, never stopped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingStopped, match=r"^Probe: 2 reward failures on 3 responses in this step \(67%"):
            health.finish(report, 3, "Probe", training=True)
    health.checks = RewardChecks(max_error_share=1.0)
    health.finish(report, 3, "Probe", training=True)  # under the share: goes on


def test_the_share_must_be_a_share():
    with pytest.raises(ValueError, match=r"^RewardChecks\.max_error_share=1\.5: must be a share in \[0, 1\]"):
        RewardChecks(max_error_share=1.5)


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    st.one_of(
        st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.none(), st.text(max_size=3)
    )
)
def test_fuzz_verdict_is_a_bool_only_for_bools_and_numbers_in_0_1(value):
    got = verdict(value)
    if isinstance(value, bool):
        assert got is value
    elif isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1:
        assert got is (value != 0)
    else:
        assert got is None
    assert verdict(torch.tensor(0.5)) is True and verdict(torch.tensor(math.nan)) is None


@FUZZ
@given(st.lists(texts, max_size=4), st.integers(0, 10**6))
def test_fuzz_the_length_penalty_term_is_in_range(responses, tokens):
    values = LengthPenalty(target_tokens=512).reward_values(responses, torch.full((len(responses),), float(tokens)))
    assert bool(torch.isfinite(values).all()) and bool(((values >= 0) & (values <= 1)).all())


def test_the_default_grader_is_unchanged_by_the_wrapper():
    reward = ReasoningReward()
    assert reward.grader is grade
    RewardHealth(reward, RewardChecks())
    assert isinstance(reward.grader, CheckedGrader) and reward.grader.grader is grade
