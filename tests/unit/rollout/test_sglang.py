"""sglang adapter against sglang's documented formats: requests, outputs, weight sync, errors, timeouts.

No real sglang runs here (it needs a GPU and an 11 GB install): the engines talk to a fake HTTP
server on 127.0.0.1 and a fake ``sglang.Engine``, both answering in the documented format (see
``pebr_lit/rollout/sglang_io.py`` for the sources). The real round trip is ``tests/gpu/test_sglang_engine.py``;
fits and evaluations through the CLI with a server engine are ``tests/smoke/test_sglang_engine_fit.py``.
"""

from __future__ import annotations

import base64
import importlib.machinery
import io
import json
import math
import os
import socket
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoModelForImageTextToText

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rollout import EngineRollout, HFGenerate, SGLangOffline, SGLangServer, logprob_gap, sglang_io
from pebr_lit.rollout.sglang import ORIGINAL_LOGPROB_ENV
from pebr_lit.rollout.sglang_io import build_generate_request, encode_image, parse_generate_outputs
from pebr_lit.rollout.weights import engine_weights
from tests.helpers.sglang_server import EOS, PAD, fake_sglang_servers, scripted_reply, sglang_output, stop_finish


@pytest.fixture
def fake():
    with fake_sglang_servers() as start:
        yield start


@pytest.fixture(scope="module")
def records(world):
    return load_records(world / "val.jsonl")[:2]


def _prompts(policy, records):
    return encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])


def test_encoded_image_decodes_to_the_same_pixels(records):
    image = records[0].load_images()[0]
    decoded = Image.open(io.BytesIO(base64.b64decode(encode_image(image))))
    assert decoded.size == image.size and decoded.convert("RGB").tobytes() == image.tobytes()


def test_encoded_image_never_ends_like_a_file_name(records, monkeypatch):
    texts = iter(["QUJDpng", "QUJD"])  # the first encoding would be read as a path by sglang's load_image
    monkeypatch.setattr(sglang_io, "_b64", lambda data: next(texts))
    assert encode_image(records[0].load_images()[0]) == "QUJD"


def test_request_strips_left_padding_and_repeats_each_prompt():
    prompts = {
        "input_ids": torch.tensor([[PAD, PAD, 5, 6], [7, 8, 9, 10]]),
        "attention_mask": torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]),
    }
    sampling = SamplingSettings(num_samples=2, temperature=0.7, top_p=0.9, max_new_tokens=12)
    request = build_generate_request(prompts, [["img-a"], ["img-b"]], sampling, [7, EOS], return_logprob=True)
    assert request == {
        "input_ids": [[5, 6], [5, 6], [7, 8, 9, 10], [7, 8, 9, 10]],  # row i answers prompt i // 2
        "image_data": [["img-a"], ["img-a"], ["img-b"], ["img-b"]],
        "sampling_params": {
            "max_new_tokens": 12,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": -1,
            "min_p": 0.0,
            "repetition_penalty": 1.0,
            "stop_token_ids": [EOS, 7],
        },
        "return_logprob": True,
    }


def test_greedy_request_and_text_only_prompts():
    prompts = {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.tensor([[1, 1]])}
    request = build_generate_request(prompts, [[]], SamplingSettings(do_sample=False, max_new_tokens=3), [EOS], False)
    assert request["sampling_params"]["temperature"] == 0.0 and request["sampling_params"]["top_p"] == 1.0
    assert "image_data" not in request and request["return_logprob"] is False
    with pytest.raises(ValueError, match="one record per prompt"):
        build_generate_request(prompts, [[], []], SamplingSettings(), [EOS], False)


def _parse(outputs, rows=None, max_new_tokens=5):
    return parse_generate_outputs(outputs, rows or len(outputs), PAD, [EOS], [9], max_new_tokens, return_logprob=True)


def test_outputs_become_right_padded_rows_cut_at_the_end_token():
    outputs = [
        sglang_output([11, 12, EOS], stop_finish(), [-0.1, -0.2, -0.3], prompt_tokens=7),
        {
            "output_ids": [13],
            "meta_info": {"finish_reason": stop_finish(), "output_token_logprobs": [[-0.4, 13, None]]},
        },
        sglang_output([14, 15, 16, 17, 18], {"type": "length", "length": 5}, [-0.5] * 5),
        sglang_output(
            [19, 9, 20, EOS], stop_finish(), [-0.6, -0.7, -0.8, -0.9]
        ),  # 9 is suppressed (an image placeholder)
    ]
    parsed = _parse(outputs)
    # Row 1's stop token is missing from output_ids and gets appended (without an engine log-prob);
    # row 3 ends before the suppressed token and, having no end token, is truncated.
    assert parsed.response_ids.tolist() == [
        [11, 12, EOS, PAD, PAD],
        [13, EOS, PAD, PAD, PAD],
        [14, 15, 16, 17, 18],
        [19, PAD, PAD, PAD, PAD],
    ]
    assert parsed.response_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert parsed.truncated.tolist() == [False, False, True, True]
    expected = torch.tensor([[-0.1, -0.2, -0.3, 0, 0], [-0.4, math.nan, 0, 0, 0], [-0.5] * 5, [-0.6, 0, 0, 0, 0]])
    torch.testing.assert_close(parsed.logprobs, expected, equal_nan=True)
    assert parsed.prompt_tokens == [7, None, None, None]


def test_outputs_are_cut_at_max_new_tokens_and_at_the_first_end_token():
    parsed = _parse([sglang_output([11, EOS, 12, EOS, 13, 14], stop_finish(), [-1.0] * 6)], max_new_tokens=5)
    assert parsed.response_ids.tolist() == [[11, EOS]] and parsed.truncated.tolist() == [False]


def test_log_probs_for_other_tokens_are_unknown():
    output = sglang_output([11, 12], {"type": "length", "length": 2})
    output["meta_info"]["output_token_logprobs"] = [[-0.1, 11, None], [-0.2, 99, None]]
    assert torch.isnan(_parse([output]).logprobs[0]).tolist() == [False, True]


def test_output_ids_fall_back_to_the_log_prob_tokens():
    output = {
        "meta_info": {"finish_reason": stop_finish(), "output_token_logprobs": [[-0.1, 11, None], [-0.2, EOS, None]]}
    }
    assert _parse([output]).response_ids.tolist() == [[11, EOS]]


def test_bad_outputs_are_clear_errors():
    with pytest.raises(RuntimeError, match="aborted response 0: out of memory"):
        _parse([sglang_output([11], {"type": "abort", "message": "out of memory"})])
    with pytest.raises(ValueError, match="1 outputs for 2"):
        _parse([sglang_output([11], stop_finish())], rows=2)
    with pytest.raises(ValueError, match="return-token-ids"):
        parse_generate_outputs([{"meta_info": {}}], 1, PAD, [EOS], [], 5, return_logprob=False)


def test_logprob_gap_by_hand():
    engine = torch.tensor([[-1.0, -2.0, math.nan], [-0.5, 0.0, 0.0]])
    trainer = torch.tensor([[-1.5, -2.0, -3.0], [-0.25, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    # compared: |−1+1.5| = 0.5, |−2+2| = 0, |−0.5+0.25| = 0.25 (NaN and padding skipped) -> max 0.5, mean 0.25
    assert logprob_gap(engine, trainer, mask) == pytest.approx({"max": 0.5, "mean": 0.25})
    assert logprob_gap(engine, trainer, torch.zeros_like(mask)) == {}


def test_server_round_trip_builds_a_rollout_the_trainer_can_score(policy, records, fake):
    server = fake(scripted_reply)
    engine = SGLangServer(server.url, timeout_s=10)
    prompts = _prompts(policy, records)
    rollout = engine.generate(policy, prompts, records, SamplingSettings(num_samples=2, max_new_tokens=8))

    ((path, body),) = server.requests
    assert path == "/generate" and body["return_logprob"] is True
    rows = [ids[keep.bool()].tolist() for ids, keep in zip(prompts["input_ids"], prompts["attention_mask"])]
    assert body["input_ids"] == [rows[0], rows[0], rows[1], rows[1]]
    sent = Image.open(io.BytesIO(base64.b64decode(body["image_data"][2][0]))).convert("RGB")
    assert sent.tobytes() == records[1].load_images()[0].tobytes()
    assert body["sampling_params"]["stop_token_ids"] == policy.eos_token_ids

    assert isinstance(rollout, EngineRollout) and rollout.num_samples == 2
    assert rollout.response_ids.tolist() == [
        [40, EOS, PAD, PAD, PAD],
        [40, 41, EOS, PAD, PAD],
        [40, 41, 42, PAD, PAD],
        [40, 41, 42, 43, EOS],
    ]  # row k: k + 1 tokens, then <|im_end|> except row 2 (length)
    assert rollout.truncated.tolist() == [False, False, True, False]
    assert rollout.texts == policy.tokenizer.batch_decode(rollout.response_ids, skip_special_tokens=True)
    assert torch.equal(rollout.prompt_ids, prompts["input_ids"].repeat_interleave(2, dim=0))
    assert torch.equal(rollout.logprobs, torch.where(rollout.response_mask.bool(), -0.5, 0.0))
    trainer, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
    assert set(logprob_gap(rollout.logprobs, trainer, rollout.response_mask)) == {"max", "mean"}


def test_server_reading_prompts_differently_warns_once(policy, records, fake):
    def reply(body):
        return [sglang_output([EOS], stop_finish(), [-0.1], prompt_tokens=len(ids) + 3) for ids in body["input_ids"]]

    engine = SGLangServer(fake(reply).url, timeout_s=10)
    prompts = _prompts(policy, records)
    with pytest.warns(UserWarning, match="min_pixels/max_pixels"):
        engine.generate(policy, prompts, records, SamplingSettings(num_samples=2, max_new_tokens=4))


def test_server_that_never_answers_times_out(policy, records, fake):
    server = fake(scripted_reply)
    server.hang_s = 2.0
    engine = SGLangServer(server.url, timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer within timeout_s=0.3"):
        engine.generate(policy, _prompts(policy, records), records, SamplingSettings(num_samples=2, max_new_tokens=4))
    assert time.monotonic() - start < 1.5


def test_unreachable_server_says_how_to_start_one(policy, records):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = SGLangServer(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(ConnectionError, match="sglang.launch_server"):
        engine.generate(policy, _prompts(policy, records), records, SamplingSettings(num_samples=2, max_new_tokens=4))
    with pytest.raises(ValueError, match=r"^SGLangServer\.url='127\.0\.0\.1:30000': must start with http://"):
        SGLangServer("127.0.0.1:30000")


@pytest.fixture(scope="module")
def lora_policy(assets):
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)  # B starts at zero; make the adapter matter
    return policy


def test_sync_writes_the_merged_policy_and_posts_update_weights_from_disk(lora_policy, assets, records, fake, tmp_path):
    server = fake()
    SGLangServer(server.url, sync_dir=str(tmp_path / "sync"), shard_mb=1).sync_weights(lora_policy)
    ((path, body),) = server.requests
    assert path == "/update_weights_from_disk" and body == {"model_path": str((tmp_path / "sync").resolve())}

    # The written names are the on-disk names of the original checkpoint (what sglang's loader reads).
    index = json.loads((tmp_path / "sync" / "model.safetensors.index.json").read_text())
    with safe_open(str(assets["vlm"] / "model.safetensors"), "pt") as original:
        assert set(index["weight_map"]) == set(original.keys())
    assert len(set(index["weight_map"].values())) > 1, "shard_mb=1 should split the ~2.4 MB model"
    # Loaded by plain transformers, the directory is the adapted policy: same log-probs.
    prompts = _prompts(lora_policy, records)
    ids, mask = torch.tensor([[40, 41, EOS]] * 2), torch.ones(2, 3, dtype=torch.long)
    plain = AutoModelForImageTextToText.from_pretrained(tmp_path / "sync", dtype=torch.float32)
    with torch.no_grad():
        expected, _ = lora_policy.token_logprobs(prompts, ids, mask)
        got, _ = lora_policy.token_logprobs(prompts, ids, mask, model=plain)
        with lora_policy.reference():
            base, _ = lora_policy.token_logprobs(prompts, ids, mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(base, expected, atol=1e-3), "the adapter should change the model"


def test_failed_weight_update_raises_the_servers_message(lora_policy, fake, tmp_path):
    server = fake()
    server.update_ok = False
    with pytest.raises(RuntimeError, match="Failed to get weights iterator"):
        SGLangServer(server.url, sync_dir=str(tmp_path)).sync_weights(lora_policy)


def test_qlora_policy_syncs_as_the_model_its_forward_computes(assets, records, fake, tmp_path):
    pytest.importorskip("bitsandbytes")
    from pebr_lit.policy.settings import QuantizationSettings

    torch.manual_seed(0)
    policy = PolicyWrapper(
        str(assets["vlm"]),
        dtype="float32",
        lora=LoraSettings(r=4, alpha=8, dropout=0.0),
        quantization=QuantizationSettings(compute_dtype="float32"),
    )
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    SGLangServer(fake().url, sync_dir=str(tmp_path)).sync_weights(policy)
    # De-quantised 4-bit base + merged adapter, loaded as a plain fp32 model, gives the QLoRA policy's log-probs.
    prompts = _prompts(policy, records)
    ids, mask = torch.tensor([[40, 41, EOS]] * 2), torch.ones(2, 3, dtype=torch.long)
    plain = AutoModelForImageTextToText.from_pretrained(tmp_path, dtype=torch.float32)
    with torch.no_grad():
        expected, _ = policy.token_logprobs(prompts, ids, mask)
        got, _ = policy.token_logprobs(prompts, ids, mask, model=plain)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def _fake_sglang(
    monkeypatch, calls: list, start_s: float = 0.0, outputs: Callable[[dict], list] = scripted_reply
) -> None:
    """A stand-in ``sglang`` module whose Engine follows the documented Python API."""

    class Engine:
        def __init__(self, **kwargs: Any) -> None:
            time.sleep(start_s)
            calls.append(("init", kwargs, threading.get_ident()))

        def generate(self, **kwargs: Any) -> list:
            calls.append(("generate", kwargs, threading.get_ident()))
            return outputs(kwargs)

        def update_weights_from_tensor(self, named_tensors, load_format=None, flush_cache=True):
            calls.append(
                ("update", {"named_tensors": list(named_tensors), "flush_cache": flush_cache}, threading.get_ident())
            )
            return True, "Success"

        def shutdown(self) -> None:
            calls.append(("shutdown", {}, threading.get_ident()))

    module = types.ModuleType("sglang")
    module.__spec__ = importlib.machinery.ModuleSpec("sglang", None)
    module.Engine = Engine
    monkeypatch.setitem(sys.modules, "sglang", module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_offline_without_sglang_or_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sglang", None)  # import sglang fails
    with pytest.raises(ImportError, match=r"pip install 'pebr-lit\[sglang\]'"):
        SGLangOffline()
    _fake_sglang(monkeypatch, [])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        SGLangOffline()


def test_offline_engine_calls_follow_the_documented_api_on_one_thread(monkeypatch, lora_policy, records):
    calls: list = []
    _fake_sglang(monkeypatch, calls)
    monkeypatch.delenv("SGLANG_RETURN_ORIGINAL_LOGPROB", raising=False)
    engine = SGLangOffline(mem_fraction_static=0.3, bucket_mb=1, timeout_s=10)
    prompts = _prompts(lora_policy, records)
    rollout = engine.generate(lora_policy, prompts, records, SamplingSettings(num_samples=2, max_new_tokens=8))
    engine.sync_weights(lora_policy)
    engine.close()

    kinds = [c[0] for c in calls]
    assert kinds[:2] == ["init", "generate"] and kinds[-1] == "shutdown" and set(kinds[2:-1]) == {"update"}
    assert calls[0][1] == {"model_path": lora_policy.source, "tp_size": 1, "mem_fraction_static": 0.3, "dtype": "auto"}
    assert os.environ["SGLANG_RETURN_ORIGINAL_LOGPROB"] == "1", (
        "engine log-probs must be at temperature 1, like the trainer's"
    )
    assert set(calls[1][1]) == {"input_ids", "image_data", "sampling_params", "return_logprob"}
    assert rollout.response_mask.sum(1).tolist() == [2, 3, 3, 5]
    updates = [c[1] for c in calls if c[0] == "update"]
    assert len(updates) > 1 and [u["flush_cache"] for u in updates] == [False] * (len(updates) - 1) + [True]
    pushed = [pair for u in updates for pair in u["named_tensors"]]
    expected = list(engine_weights(lora_policy))
    assert [n for n, _ in pushed] == [n for n, _ in expected]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(pushed, expected))
    threads = {c[2] for c in calls}
    assert len(threads) == 1 and threads != {threading.get_ident()}, "every engine call runs on the engine's own thread"


def test_offline_engine_that_hangs_while_starting_times_out(monkeypatch, policy, records):
    _fake_sglang(monkeypatch, [], start_s=2.0)
    engine = SGLangOffline(timeout_s=0.3)
    prompts = _prompts(policy, records)
    with pytest.raises(TimeoutError, match="starting the engine did not finish within timeout_s=0.3"):
        engine.generate(policy, prompts, records, SamplingSettings(num_samples=2, max_new_tokens=4))
    with pytest.raises(RuntimeError, match="still stuck in starting the engine"):
        engine.generate(policy, prompts, records, SamplingSettings(num_samples=2, max_new_tokens=4))


# ------------------------------------------------------------------------- log-prob temperature
TEMPERED = SamplingSettings(num_samples=2, temperature=1.2, max_new_tokens=4)


@pytest.mark.parametrize(
    ("wanted", "env", "reported"),
    [(1.0, "1", 1.0), (1.2, None, 1.2), (1.5, None, 1.2)],
    ids=["temperature-1", "sampling-temperature", "neither"],
)
def test_offline_engine_sets_sglangs_variable_for_the_temperature_asked(
    monkeypatch, policy, records, wanted, env, reported
):
    """sglang reports log softmax(logits) with SGLANG_RETURN_ORIGINAL_LOGPROB=1, log softmax(logits / T_sampling)
    without it; no other temperature, so 1.5 gets the sampling one and the module will not compare."""
    calls: list = []
    _fake_sglang(monkeypatch, calls)
    monkeypatch.setenv(ORIGINAL_LOGPROB_ENV, "0" if env else "1")  # whatever was there, the engine decides
    engine = SGLangOffline(timeout_s=10)
    assert engine.choose_logprob_temperature(wanted, TEMPERED) == reported
    engine.generate(policy, _prompts(policy, records), records, TEMPERED)
    assert [c[0] for c in calls] == ["init", "generate"]
    assert os.environ.get(ORIGINAL_LOGPROB_ENV) == env
    # Started, the engine keeps what its processes read: asking for another temperature changes nothing.
    assert engine.choose_logprob_temperature(1.0 if wanted != 1.0 else 1.2, TEMPERED) == reported
    engine.close()


def test_offline_engine_without_log_probs_reports_none_and_leaves_the_variable(monkeypatch, policy, records):
    _fake_sglang(monkeypatch, [])
    monkeypatch.setenv(ORIGINAL_LOGPROB_ENV, "1")
    engine = SGLangOffline(timeout_s=10, check_logprobs=False)
    assert engine.choose_logprob_temperature(1.2, TEMPERED) is None
    engine.generate(policy, _prompts(policy, records), records, TEMPERED)
    assert os.environ[ORIGINAL_LOGPROB_ENV] == "1"
    engine.close()


@pytest.mark.parametrize(("original", "reported"), [(False, 1.2), (True, 1.0)])
def test_server_reports_the_temperature_it_was_started_for(original, reported):
    engine = SGLangServer("http://127.0.0.1:1", original_logprobs=original)
    assert engine.choose_logprob_temperature(1.0, TEMPERED) == reported
    assert engine.choose_logprob_temperature(1.2, TEMPERED) == reported  # a server cannot follow the trainer
    greedy = SamplingSettings(do_sample=False, max_new_tokens=4)
    assert engine.choose_logprob_temperature(1.0, greedy) == 1.0  # sglang: greedy log-probs are at T = 1
    assert SGLangServer("http://127.0.0.1:1", check_logprobs=False).choose_logprob_temperature(1.2, TEMPERED) is None


def test_hf_generate_reports_no_log_probs():
    assert HFGenerate().choose_logprob_temperature(1.2, TEMPERED) is None
