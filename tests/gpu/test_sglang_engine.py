"""A real sglang engine round trip: sample, compare log-probs with the trainer, sync weights, both modes.

Never run yet: it needs a CUDA GPU *and* the sglang extra (``pip install 'pebr-lit[sglang]'``,
~11 GB), which no machine of this project has had together. Skipped without either
(``tests/conftest.py`` skips ``gpu`` tests without CUDA; ``importorskip`` below without sglang).
Every engine start is bounded by a timeout, so a broken install fails instead of hanging.

Left out on purpose: throughput (``benchmarks/``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.settings import LoraSettings, SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rollout import SGLangOffline, SGLangServer, logprob_gap

pytestmark = [pytest.mark.gpu, pytest.mark.sglang]
pytest.importorskip("sglang", reason="needs the sglang extra: pip install 'pebr-lit[sglang]'")

START_TIMEOUT_S = 300


def _setup(assets, world):
    torch.manual_seed(0)
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)  # the engine starts from the base checkpoint: only a sync makes it match
    policy.model.cuda()
    records = load_records(world / "val.jsonl")[:3]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    return policy, records, {k: v.cuda() for k, v in prompts.items()}


def _round_trip(engine, policy, records, prompts) -> None:
    engine.sync_weights(policy)
    sampling = SamplingSettings(num_samples=2, max_new_tokens=16)
    rollout = engine.generate(policy, prompts, records, sampling)
    assert rollout.response_ids.shape[0] == 6 and rollout.logprobs is not None
    for row_mask in rollout.response_mask:
        n = int(row_mask.sum())
        assert row_mask[:n].all() and not row_mask[n:].any()
    with torch.no_grad():
        trainer, _ = policy.token_logprobs(prompts, rollout.response_ids, rollout.response_mask, num_samples=2)
    gap = logprob_gap(rollout.logprobs, trainer, rollout.response_mask)
    assert gap and gap["mean"] < 0.05, f"engine and trainer disagree: {gap}"
    greedy = SamplingSettings(do_sample=False, max_new_tokens=16)
    assert engine.generate(policy, prompts, records, greedy).texts == policy.generate(prompts, greedy).texts
    # At T = 1.2 the engine's log-probs are at the temperature it says: the server (started without
    # SGLANG_RETURN_ORIGINAL_LOGPROB) at 1.2, the offline engine (started with it, never asked otherwise) at 1.
    hot = SamplingSettings(num_samples=2, temperature=1.2, max_new_tokens=16)
    reported = engine.choose_logprob_temperature(1.2, hot)
    rollout = engine.generate(policy, prompts, records, hot)
    with torch.no_grad():
        trainer, _ = policy.token_logprobs(
            prompts, rollout.response_ids, rollout.response_mask, num_samples=2, temperature=reported
        )
    gap = logprob_gap(rollout.logprobs, trainer, rollout.response_mask)
    assert gap and gap["mean"] < 0.05, f"engine log-probs are not at temperature {reported}: {gap}"


def test_offline_engine_round_trip(assets, world):
    policy, records, prompts = _setup(assets, world)
    engine = SGLangOffline(dtype="float32", mem_fraction_static=0.3, timeout_s=START_TIMEOUT_S)
    try:
        _round_trip(engine, policy, records, prompts)
    finally:
        engine.close()


def test_server_round_trip(assets, world, tmp_path):
    policy, records, prompts = _setup(assets, world)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "sglang.launch_server",
        "--model-path",
        str(assets["vlm"]),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--mem-fraction-static",
        "0.3",
    ]
    server = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, f"sglang server exited with {server.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"sglang server not healthy after {START_TIMEOUT_S} s"
                time.sleep(2)
        engine = SGLangServer(f"http://127.0.0.1:{port}", timeout_s=120, sync_dir=str(tmp_path / "weights"))
        _round_trip(engine, policy, records, prompts)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
