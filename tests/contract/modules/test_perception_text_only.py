"""PerceptionGRPO on text-only records: they are not sent to the CLIP scorer, their similarity is NaN, their
CLIP reward is 0, and they are counted."""

from __future__ import annotations

import math

import torch
from PIL import Image

from pebr_lit.data.records import record_from_dict
from pebr_lit.modules.perception import PerceptionGRPO
from pebr_lit.rewards.stages import PerceptionReward


class RecordingScorer:
    """Similarity 0.25 for every pair it is given; remembers what it was given."""

    def __init__(self) -> None:
        self.failures = 0
        self.calls: list[tuple[list, list[str]]] = []

    def similarity(self, images, texts):
        self.calls.append((list(images), list(texts)))
        return torch.full((len(texts),), 0.25)


def _record(qid: str, images: list) -> object:
    return record_from_dict(
        {"qid": qid, "problem": "q", "answer": "1", "images": images}, f"rl.jsonl:row {qid}", allow_text_only=True
    )


def test_text_only_records_get_nan_similarity_zero_clip_reward_and_a_count(policy):
    scorer = RecordingScorer()
    module = PerceptionGRPO(policy=policy, clip_scorer=scorer)
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    with_image, text_only = _record("1", [red]), _record("2", [])
    records = [with_image, with_image, text_only, text_only]  # 2 rollouts per prompt
    texts = [f"### Image Description: response {i}" for i in range(4)]
    extra = module.reward_inputs(texts, records)

    (images, scored_texts), *more = scorer.calls
    assert not more and len(images) == 2 and scored_texts[0].endswith("response 0")  # only the image rows
    similarity = extra.reward["clip_similarity"]
    assert similarity[:2].tolist() == [0.25, 0.25] and all(math.isnan(s) for s in similarity[2:].tolist())
    assert extra.logged["clip_similarity"].tolist() == [0.25, 0.25, 0.0, 0.0]
    assert extra.logged["clip_text_only"].tolist() == [0.0, 0.0, 1.0, 1.0]  # its mean is the share logged
    assert extra.stats == {"clip_failures": 0.0, "clip_text_only": 2.0}

    reward = PerceptionReward(length=0.0)(
        texts, answers=["1"] * 4, key_words=[()] * 4, num_tokens=[10] * 4, clip_similarity=similarity
    )
    # s = 0.25 under the threshold 0.4 gives 0.25 / 0.4 = 0.625; a text-only row's NaN gives 0.
    assert reward["clip"].tolist() == [0.625, 0.625, 0.0, 0.0]


def test_a_batch_of_text_only_records_only_never_calls_the_scorer_with_images(policy):
    scorer = RecordingScorer()
    extra = PerceptionGRPO(policy=policy, clip_scorer=scorer).reward_inputs(["a", "b"], [_record("t", [])] * 2)
    assert all(images == [] for images, _ in scorer.calls)
    assert torch.isnan(extra.reward["clip_similarity"]).all() and extra.stats["clip_text_only"] == 2.0
