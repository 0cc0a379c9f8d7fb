"""A prompt batch mixing rows with one image, none (text-only) and two: generation and log-probs of every row
match the row on its own, and a micro-batch of text-only rows alone (no image left in it) still scores."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from pebr_lit.data.collate import encode_prompts
from pebr_lit.policy.inputs import images_per_row, select_prompt_rows
from pebr_lit.policy.settings import SamplingSettings

QUESTIONS = ["How many red squares?", "What is 3 + 4?", "Which image is bigger?"]
IMAGES = [
    [Image.new("RGB", (112, 112), (255, 0, 0))],
    [],
    [Image.new("RGB", (112, 112), (0, 255, 0)), Image.new("RGB", (56, 56), (0, 0, 255))],
]
GREEDY = SamplingSettings(do_sample=False, max_new_tokens=8)


@pytest.fixture(scope="module")
def mixed(policy):
    prompts = encode_prompts(policy.processor, QUESTIONS, IMAGES)
    torch.manual_seed(0)
    return prompts, policy.generate(prompts, SamplingSettings(num_samples=2, max_new_tokens=8))


def _alone(policy, i: int) -> dict[str, torch.Tensor]:
    return encode_prompts(policy.processor, [QUESTIONS[i]], [IMAGES[i]])


def test_the_mixed_batch_holds_each_rows_images(policy, mixed):
    prompts, _ = mixed
    config = policy.model.config
    assert images_per_row(prompts, config.image_token_id, config.vision_config.spatial_merge_size) == [1, 0, 2]


def test_greedy_generation_of_each_row_is_the_rows_own(policy, mixed):
    prompts, _ = mixed
    together = policy.generate(prompts, GREEDY).texts
    assert together == [policy.generate(_alone(policy, i), GREEDY).texts[0] for i in range(3)]


@pytest.mark.parametrize("reuse", [True, False])
def test_logprobs_of_each_row_match_the_row_alone(policy, mixed, reuse):
    prompts, rollout = mixed
    ids, mask = rollout.response_ids, rollout.response_mask  # [6, R]: row i answers prompt i // 2
    together, _ = policy.token_logprobs(prompts, ids, mask, num_samples=2, reuse_image_features=reuse)
    for i in range(3):
        rows = [2 * i, 2 * i + 1]
        alone, _ = policy.token_logprobs(_alone(policy, i), ids[rows], mask[rows], num_samples=2)
        torch.testing.assert_close(together[rows], alone, atol=1e-4, rtol=0)


@pytest.mark.parametrize("reuse", [True, False])
def test_a_micro_batch_of_text_only_rows_scores_without_image_inputs(policy, mixed, reuse):
    prompts, rollout = mixed
    rows = [2, 3]  # both answer prompt 1, the text-only one
    selected, order = select_prompt_rows(prompts, [1, 1], [1, 0, 2])
    assert order == [] and "pixel_values" not in selected and "image_grid_thw" not in selected
    logp, _ = policy.token_logprobs(
        prompts, rollout.response_ids[rows], rollout.response_mask[rows], prompt_rows=[1, 1], reuse_image_features=reuse
    )
    alone, _ = policy.token_logprobs(_alone(policy, 1), rollout.response_ids[rows], rollout.response_mask[rows], 2)
    torch.testing.assert_close(logp, alone, atol=1e-4, rtol=0)
