"""The modules ask the rule set: GRPO for the records' keywords, PerceptionGRPO for the CLIP text, SFT for the
grading of validation and difficulty sampling, and the validation metrics use the module's rules."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from pebr_lit.modules.perception import PerceptionGRPO
from pebr_lit.modules.sft import SFTModule
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.rewards.grading import grade, mathruler_grade
from pebr_lit.rewards.rules import AuthorsRules, PebrLitRules
from pebr_lit.rewards.stages import PerceptionReward
from tests.helpers.responses import full


class _RecordingScorer:
    """A CLIP stand-in: similarity 0.2 for every pair; keeps the texts it was asked about."""

    failures = 0

    def __init__(self) -> None:
        self.texts: list[str] = []

    def similarity(self, images, texts) -> torch.Tensor:
        self.texts = list(texts)
        return torch.full((len(texts),), 0.2)


def _record(qid: str = "q0") -> SimpleNamespace:
    # No keywords of its own; a teacher description pebr-lit extracts ["red", "square"] from.
    return SimpleNamespace(
        qid=qid, answer="3", key_words=(), description="A red square.", images=("image",), load_images=lambda: ["image"]
    )


@pytest.mark.parametrize(
    ("rules", "captions", "keyword"),
    [
        # pebr-lit: the parsed description either way; keywords extracted from the description: 2/2, then 0/2.
        (PebrLitRules(), ["A red square", "a cat / dog"], [1.0, 0.0]),
        # authors: the caption needs the rationale heading after it ("" otherwise); no keywords -> 0.
        (AuthorsRules(), ["A red square", ""], [0.0, 0.0]),
    ],
)
def test_grpo_takes_keywords_and_clip_text_from_the_rules(policy, rules, captions, keyword) -> None:
    scorer = _RecordingScorer()
    module = PerceptionGRPO(policy=policy, clip_scorer=scorer, reward=PerceptionReward(rules=rules))
    texts = [full("A red square"), "### Image Description: a cat / dog\n### The final answer is: 3"]
    record = _record()
    rewards, _ = module.score(texts, [record, record], torch.tensor([10, 10]))
    assert scorer.texts == captions
    assert rewards["keyword"].tolist() == keyword
    # Both texts are non-empty for pebr-lit; the authors score the empty caption: 0.2 / 0.4 = 0.5 each time.
    assert rewards["clip"].tolist() == [0.5, 0.5]
    assert module.generation_metrics.rules is module.reward.rules is rules


class _FixedPolicy:
    """A policy stand-in whose ``generate`` answers every prompt with the same two responses."""

    processor = None

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def generate(self, prompts, sampling: SamplingSettings) -> SimpleNamespace:
        return SimpleNamespace(texts=self.texts, response_mask=torch.ones(len(self.texts), 4))


@pytest.mark.parametrize(
    ("rules", "grader", "correct", "formatted"),
    [
        # pebr-lit: 0 takes the last answer "3" (right) but lacks sections; 1's headings after the first are
        # not at a line start, so no answer section is found and the whole text is wrong.
        (None, grade, [1.0, 0.0], [0.0, 0.0]),
        # authors: 0's first answer "4" is wrong; 1 has all four headings (empty sections) and answers "3".
        (AuthorsRules(), mathruler_grade, [0.0, 1.0], [0.0, 1.0]),
    ],
)
def test_sft_sampling_grades_with_its_rules(rules, grader, correct, formatted) -> None:
    texts = [
        "### The final answer is: 4\n### The final answer is: 3",
        "### Image Description:### Rationales:### Step 1:### The final answer is: 3",
    ]
    sampling = SamplingSettings(num_samples=2, do_sample=True, max_new_tokens=4)
    module = SFTModule(_FixedPolicy(texts), eval_sampling=sampling, rules=rules, grader=grader)
    rows = module.predict_step({"prompts": None, "records": [_record()]}, 0)
    assert rows == [{"qid": "q0", "responses": texts, "correct": correct, "format": formatted}]
    assert module.generation_metrics.rules is module.rules and module.generation_metrics.grader.grader is grader
    assert isinstance(module.rules, AuthorsRules if rules else PebrLitRules)


def test_sft_sampling_counts_a_grader_that_fails_as_wrong_and_warns() -> None:
    # NaN is truthy: read with bool() it graded every answer correct, so every question looked Easy.
    texts = ["### The final answer is: 3", "### The final answer is: 4"]
    sampling = SamplingSettings(num_samples=2, do_sample=True, max_new_tokens=4)
    module = SFTModule(_FixedPolicy(texts), eval_sampling=sampling, grader=lambda p, t: math.nan)
    with pytest.warns(UserWarning, match=r"the grader failed on 2 predict response\(s\), graded as wrong .*nan"):
        rows = module.predict_step({"prompts": None, "records": [_record()]}, 0)
    assert rows[0]["correct"] == [0.0, 0.0]
