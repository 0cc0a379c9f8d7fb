"""The log-prob pass encodes only the images of the rows it scores, once each, and scores them as before.

A rollout round's prompts hold every prompt's images; a micro-batch answers a few of them. Encoding all of
them for each micro-batch multiplied the vision tower's activations by the round's size (the planner found
38.5 GB per pass for 7B stage 2 with the tower trained).
"""

from __future__ import annotations

import torch
from PIL import Image

from pebr_lit.data.collate import encode_prompts
from pebr_lit.policy.logprobs import token_logprobs
from pebr_lit.policy.lora import unwrap

QUESTIONS = ["How many red squares?", "What colour is it?", "Which image is bigger?"]
IMAGES = [
    [Image.new("RGB", (112, 112), (255, 0, 0))],
    [Image.new("RGB", (56, 112), (0, 255, 0))],
    [Image.new("RGB", (112, 56), (0, 0, 255)), Image.new("RGB", (56, 56), (9, 9, 9))],
]


def test_only_the_scored_rows_images_are_encoded_and_the_log_probs_do_not_change(policy, monkeypatch):
    prompts = encode_prompts(policy.processor, QUESTIONS, IMAGES)
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (3, 5))  # [N, R]: three responses, to prompt rows 2, 2 and 0
    mask = torch.ones_like(ids)
    rows = [2, 2, 0]
    expected, _ = token_logprobs(policy.model, prompts, ids, mask, rows, reuse_image_features=False)

    hf = unwrap(policy.model)
    encoded: list[int] = []
    original = hf.get_image_features

    def spy(pixel_values, image_grid_thw, **kw):
        encoded.append(int(image_grid_thw.shape[0]))
        return original(pixel_values, image_grid_thw, **kw)

    monkeypatch.setattr(hf, "get_image_features", spy)
    got, _ = token_logprobs(policy.model, prompts, ids, mask, rows)
    # Row 2's two images once (not twice, though two responses answer it), row 0's one; row 1's never.
    assert encoded == [3]
    assert torch.allclose(got, expected, atol=1e-5)
