"""Reward rule sets: PebrLitRules is rewards.components, AuthorsRules is rewards.authors, the stage rewards under
AuthorsRules give the authors' pebr_1/pebr_2 totals by hand, and the rules are chosen by class_path in YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from pebr_lit.rewards import authors, components
from pebr_lit.rewards.grading import grade, mathruler_grade
from pebr_lit.rewards.rules import AuthorsRules, PebrLitRules, RewardRules
from pebr_lit.rewards.stages import PerceptionReward, ReasoningReward, StageReward
from tests.helpers.responses import full, keyword_lists, texts

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "demo"


def test_pebr_lit_rules_are_the_components_with_their_options() -> None:
    text = full("The artist considered it.", rationale="Red everywhere.")
    assert PebrLitRules().keyword(text, ["red"]) == components.keyword_reward(text, ["red"]) == 0.0
    anywhere = PebrLitRules(description_only=False, whole_word=False)
    assert anywhere.keyword(text, ["red"]) == 1.0  # "considered" and the rationale both count now
    assert PebrLitRules(whole_word=False).keyword(text, ["red"]) == 1.0  # "considered" in the description
    assert PebrLitRules(description_only=False).keyword(text, ["red"]) == 1.0  # "Red" in the rationale
    assert PebrLitRules().format(full()) == 1.0 and PebrLitRules().accuracy(full(answer="(B)"), "B", grade) == 1.0
    assert PebrLitRules().clip_text(full("a cat")) == "a cat"
    assert repr(anywhere) == "PebrLitRules(description_only=False, whole_word=False, final_answer='pebr_lit')"
    assert repr(AuthorsRules()) == "AuthorsRules(final_answer='authors', no_section='whole_response')"


def test_clip_reward_of_a_missing_text_and_a_negative_similarity() -> None:
    # pebr-lit: no description -> 0 whatever CLIP said of ""; negative s -> 0.
    assert PebrLitRules().clip(0.2, 0.4, has_text=False) == 0.0
    assert PebrLitRules().clip(0.2, 0.4, has_text=True) == pytest.approx(0.5)
    assert PebrLitRules().clip(-0.2, 0.4, has_text=True) == 0.0
    # Authors: the empty caption is scored like any other (0.2 / 0.4), negative s kept (-0.2 / 0.4).
    assert AuthorsRules().clip(0.2, 0.4, has_text=False) == pytest.approx(0.5)
    assert AuthorsRules().clip(-0.2, 0.4, has_text=True) == pytest.approx(-0.5)


def test_record_keywords_extracted_or_not() -> None:
    assert PebrLitRules().record_keywords([], "A red square.") == ["red", "square"]
    assert PebrLitRules().record_keywords(("cat",), "A red square.") == ["cat"]
    assert PebrLitRules().record_keywords([], None) == []
    assert AuthorsRules().record_keywords([], "A red square.") == []  # no keywords -> keyword reward 0
    assert AuthorsRules().record_keywords(("cat", "cat"), None) == ["cat", "cat"]


def test_authors_rules_are_the_authors_functions() -> None:
    text = "Intro ### Image Description: a cat / dog ### Rationales: bored ### Step 1: x ### The final answer is: 3\n4"
    rules = AuthorsRules()
    assert rules.keyword(text, ["red", "cat/dog"]) == authors.keyword_reward(text, ["red", "cat/dog"]) == 1.0
    assert rules.format(text) == 1.0 and PebrLitRules().format(text) == 0.0
    assert rules.accuracy(text, "3", grade) == 1.0
    assert rules.clip_text(text) == "a cat/dog"


def test_base_rules_say_what_to_implement() -> None:
    with pytest.raises(NotImplementedError):
        RewardRules().format("x")


# ------------------------------------------------------------------------- stage totals (pebr_1 and pebr_2)
def test_perception_reward_with_authors_rules_gives_pebr_1_totals() -> None:
    responses = [
        "Intro ### Image Description: A bored cat on a mat. ### Rationales: The mat is green. "
        "### Step 1: count. ### The final answer is: 3\nThe end.",
        "",
        "### Image Description:\n### Rationales:\n### Step 1:\n### The final answer is: x < 3",
        "3",
    ]
    out = PerceptionReward(rules=AuthorsRules(), length=0.1)(
        responses,
        answers=["3", "3", "x<3", "3"],
        key_words=[["red", "green", "dog", "cat"], [], ["X<3"], ["3"]],
        num_tokens=[1024, 0, 512, 100],
        clip_similarity=torch.tensor([0.1, -0.2, 0.5, float("nan")]),
    )
    # 0: keywords red (in "bored"), green (rationale), cat of 4 = 0.75; headings mid-line: format 1;
    #    clip 0.1/0.4 = 0.25; length 512/1024 = 0.5; accuracy "3" (first line) = 1.
    #    total = 0.4*0.25 + 0.4*0.75 + 0.1*1 + 0.1*0.5 = 0.1 + 0.3 + 0.1 + 0.05 = 0.55.
    # 1: no keywords 0; format 0; the empty caption scored: -0.2/0.4 = -0.5; length 1; accuracy "" = 0.
    #    total = 0.4*(-0.5) + 0.1*1 = -0.1 (the authors' totals can be negative).
    # 2: "x<3" in the normalised response: 1; empty sections: format 1; caption "" scored, 0.5 >= 0.4: 1;
    #    length 1; accuracy "x<3" = "x<3": 1. total = 0.4 + 0.4 + 0.1 + 0.1 = 1.0.
    # 3: keyword "3" in "3": 1; format 0; failed similarity: 0; length 1; no answer heading: the scripts grade
    #    the whole "3": accuracy 1 (it weighs 0 here). total = 0.4 + 0.1 = 0.5.
    assert out["keyword"].tolist() == pytest.approx([0.75, 0.0, 1.0, 1.0])
    assert out["format"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out["clip"].tolist() == pytest.approx([0.25, -0.5, 1.0, 0.0])
    assert out["length"].tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0])
    assert out["accuracy"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert out["total"].tolist() == pytest.approx([0.55, -0.1, 1.0, 0.5])


def test_reasoning_reward_with_authors_rules_gives_pebr_2_totals() -> None:
    responses = [
        "### Image Description:\n### Rationales:\n### Step 1:\n### The final answer is: x < 3",
        "### The final answer is: 4\n### The final answer is: 3",
        full(answer="4"),
        "  3  ",
    ]
    answers = ["x<3", "3", "3", "3"]
    out = ReasoningReward(rules=AuthorsRules(), grader=mathruler_grade)(responses, answers=answers)
    # 0: right ("x<3"), format 1: 0.9 + 0.1 = 1.0. 1: the first answer "4" is wrong, no other headings: 0.
    # 2: wrong, format 1: 0.1. 3: no heading: the scripts grade the whole stripped text "3", right: 0.9.
    assert out["total"].tolist() == pytest.approx([1.0, 0.0, 0.1, 0.9])
    # The contract's setting, named: no heading, no answer (format.final_answer.AUTHORS), format 0: 0.
    strict = ReasoningReward(rules=AuthorsRules(no_section="none"), grader=mathruler_grade)
    assert strict(responses, answers=answers)["total"].tolist() == pytest.approx([1.0, 0.0, 0.1, 0.0])
    # pebr-lit's rules on the same responses: 0 has empty sections (format 0) -> 0.9; 1 takes the last answer "3"
    # -> 0.9; 2 -> 0.1; 3 -> 0.
    assert ReasoningReward()(responses, answers=answers)["total"].tolist() == pytest.approx([0.9, 0.9, 0.1, 0.0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, keyword_lists, st.integers(0, 5000), st.floats(-1, 1)), max_size=4))
def test_fuzz_authors_stage_totals(rows: list[tuple[str, list[str], int, float]]) -> None:
    out = PerceptionReward(rules=AuthorsRules(), length=0.1)(
        [r[0] for r in rows],
        answers=["3"] * len(rows),
        key_words=[r[1] for r in rows],
        num_tokens=[r[2] for r in rows],
        clip_similarity=[r[3] for r in rows],
    )
    # The lowest total: clip -1 / 0.4 = -2.5 at weight 0.4 and every other component 0: -1; the highest 1.
    assert bool(torch.isfinite(out["total"]).all())
    assert bool((out["total"] >= -1 - 1e-6).all()) and bool((out["total"] <= 1 + 1e-6).all())


def test_stage_rewards_default_to_their_own_pebr_lit_rules() -> None:
    one, two = PerceptionReward(), PerceptionReward()
    assert isinstance(one.rules, PebrLitRules) and one.rules is not two.rules
    assert isinstance(ReasoningReward().rules, PebrLitRules)


# ------------------------------------------------------------------------------------------------- YAML
def test_rules_are_chosen_by_class_path() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--reward", type=StageReward)
    cfg = parser.parse_object(
        yaml.safe_load(
            """
            reward:
              class_path: pebr_lit.rewards.stages.PerceptionReward
              init_args:
                rules:
                  class_path: pebr_lit.rewards.rules.PebrLitRules
                  init_args: {description_only: false, whole_word: false}
            """
        )
    )
    reward = parser.instantiate(cfg).reward
    assert isinstance(reward.rules, PebrLitRules) and not reward.rules.description_only and not reward.rules.whole_word
    cfg = parser.parse_object(
        {"reward": {"class_path": "ReasoningReward", "init_args": {"rules": {"class_path": "AuthorsRules"}}}}
    )
    assert isinstance(parser.instantiate(cfg).reward.rules, AuthorsRules)


AUTHORS_STAGE1 = """
model:
  init_args:
    reward:
      class_path: pebr_lit.rewards.stages.PerceptionReward
      init_args:
        grader: pebr_lit.rewards.grading.mathruler_grade
        rules:
          class_path: pebr_lit.rewards.rules.AuthorsRules
"""

AUTHORS_SAMPLING = """
model:
  init_args:
    grader: pebr_lit.rewards.grading.mathruler_grade
    rules:
      class_path: pebr_lit.rewards.rules.AuthorsRules
"""


@pytest.mark.parametrize(
    ("subcommand", "config", "snippet", "at"),
    [
        ("fit", "stage1.yaml", AUTHORS_STAGE1, ("reward", "init_args")),
        ("predict", "sample.yaml", AUTHORS_SAMPLING, ()),
    ],
)
def test_authors_rules_yaml_parses_through_the_cli(tmp_path, capsys, subcommand, config, snippet, at) -> None:
    overlay = tmp_path / "authors.yaml"
    overlay.write_text(snippet)
    with pytest.raises(SystemExit) as exit_info:
        main([subcommand, "--config", str(CONFIGS / config), "--config", str(overlay), "--print_config"], run=True)
    assert exit_info.value.code == 0
    args = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    for key in at:
        args = args[key]
    assert args["rules"]["class_path"] == "pebr_lit.rewards.rules.AuthorsRules"
    assert args["grader"] == "pebr_lit.rewards.grading.mathruler_grade"
    if at:  # the overlay changed the rules and the grader only: the demo's threshold stays
        assert args["clip_threshold"] == 0.95


def test_each_rule_set_brings_its_grader_and_an_explicit_one_wins():
    # "B." for truth "B": grade drops the trailing period (match), mathruler alone does not. The response's
    # first answer line is "B." under both rule sets, so the grader alone decides.
    response = "### Image Description: x\n### Rationales: y\n### Step 1: z\n### The final answer is: B."
    assert PebrLitRules().default_grader() is grade and AuthorsRules().default_grader() is mathruler_grade
    assert ReasoningReward(rules=PebrLitRules())([response], answers=["B"])["accuracy"].tolist() == [1.0]
    assert ReasoningReward(rules=AuthorsRules())([response], answers=["B"])["accuracy"].tolist() == [0.0]
    assert ReasoningReward(rules=AuthorsRules(), grader=grade)([response], answers=["B"])["accuracy"].tolist() == [1.0]
    perception = PerceptionReward(rules=AuthorsRules())
    assert perception.grader is mathruler_grade
