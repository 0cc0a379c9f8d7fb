"""The engine-vs-trainer log-prob check compares one distribution: a GRPO step through a fake sglang server.

The fake answers as sglang does (``pebr_lit/rollout/sglang.py``): with log softmax(logits / T) of the
start policy, T = the sampling temperature, or 1 for a server started with
SGLANG_RETURN_ORIGINAL_LOGPROB=1, computed the slow way (``tests.helpers.manual_logprobs``). When the
module's log-prob temperature is the server's, the logged gap is float noise; when they differ, the
module says so once and logs no gap rather than a meaningless one.
"""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.data.records import load_records
from pebr_lit.grpo.losses import GRPOLoss
from pebr_lit.modules.grpo import GRPOModule
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rewards.stages import ReasoningReward
from pebr_lit.rollout import SGLangServer
from pebr_lit.rollout.sglang_io import encode_image
from tests.helpers.manual_logprobs import manual_logprobs
from tests.helpers.sglang_server import EOS, fake_sglang_servers, sglang_output, stop_finish

T = 1.2  # sampling temperature of the step
RESPONSE = [40, 41, EOS]  # every row's scripted response


def _server_reply(policy, records, temperature):
    """A /generate handler: each sequence is matched to its record (by prompt ids and images: several
    records share a question) and answered with ``RESPONSE`` and the start policy's log-probs of it at
    ``temperature``."""
    by_prompt = {}
    for record in records:
        ids = encode_prompts(policy.processor, [record.problem], [record.load_images()])["input_ids"][0]
        by_prompt[tuple(ids.tolist()), tuple(encode_image(i) for i in record.load_images())] = record

    def reply(body):
        assert body["sampling_params"]["temperature"] == T
        out = []
        for ids, images in zip(body["input_ids"], body["image_data"]):
            record = by_prompt[tuple(ids), tuple(images)]
            logprobs, _ = manual_logprobs(policy, record, torch.tensor(RESPONSE), temperature)
            out.append(sglang_output(RESPONSE, stop_finish(), logprobs.tolist(), len(ids)))
        return out

    return reply


def _step(assets, world, policy, original_logprobs, logprob_temperature):
    """One GRPO step of a fresh policy through the fake server; returns its logged metrics and warnings."""
    records = load_records(world / "train.jsonl")
    with fake_sglang_servers() as start:
        server = start(_server_reply(policy, records, 1.0 if original_logprobs else T))
        L.seed_everything(0, verbose=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = GRPOModule(
                PolicyWrapper(str(assets["vlm"]), dtype="float32"),  # the fake's policy, loaded again
                ReasoningReward(),
                loss=GRPOLoss(kl_coef=0.0),
                sampling=SamplingSettings(num_samples=2, temperature=T, top_p=0.99, max_new_tokens=4),
                rollout_engine=SGLangServer(server.url, timeout_s=30, original_logprobs=original_logprobs),
                logprob_temperature=logprob_temperature,
            )
            trainer = L.Trainer(
                accelerator="cpu",
                max_steps=1,
                limit_val_batches=0,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            trainer.fit(module, PromptDataModule(train_files=[str(world / "train.jsonl")], batch_size=2, seed=0))
    messages = [str(w.message) for w in caught if "reports log-probs at temperature" in str(w.message)]
    return trainer.callback_metrics, messages


@pytest.mark.parametrize(
    ("original_logprobs", "logprob_temperature"),
    [(False, None), (True, 1.0)],
    ids=["sampling-temperature", "temperature-1"],
)
def test_engine_and_trainer_agree_when_both_use_one_temperature(
    assets, world, policy, original_logprobs, logprob_temperature
):
    metrics, messages = _step(assets, world, policy, original_logprobs, logprob_temperature)
    # Same weights, same tokens, same softmax(logits / T): only float32-vs-float64 rounding is left. A trainer
    # scoring at T = 1 against the tempered server leaves 0.057 nats per token here (measured).
    assert float(metrics["train/engine_logprob_diff/mean"]) < 1e-4
    assert float(metrics["train/engine_logprob_diff/max"]) < 1e-3
    assert messages == []


def test_a_server_at_another_temperature_is_not_compared_and_says_so_once(assets, world, policy):
    metrics, messages = _step(assets, world, policy, original_logprobs=True, logprob_temperature=None)
    assert len(messages) == 1 and "GRPOModule.logprob_temperature=1.2" in messages[0]
    assert "SGLANG_RETURN_ORIGINAL_LOGPROB" in messages[0]
    assert not any(name.startswith("train/engine_logprob_diff") for name in metrics)
    assert "train/reward/total" in metrics  # the step itself ran
