"""Shared fixtures: tiny assets and a small synthetic world built once per test session, offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Qwen2.5-VL (+ processor) and tiny open_clip, saved to disk by the real build path."""
    from pebr_lit.demo.tiny import build_assets

    return build_assets(tmp_path_factory.mktemp("assets"), seed=0, num_texts=600)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic world: train/val/test JSONL + PNGs."""
    from pebr_lit.demo.synthetic import generate

    out = tmp_path_factory.mktemp("world")
    generate(out, 64, seed=0, split="train")
    generate(out, 16, seed=0, split="val")
    generate(out, 16, seed=0, split="test")
    return out


@pytest.fixture(scope="session")
def policy(assets: dict[str, Path]):
    """A full-weight tiny policy (fp32, vision trainable)."""
    from pebr_lit.policy.wrapper import PolicyWrapper

    torch.manual_seed(0)
    return PolicyWrapper(str(assets["vlm"]), dtype="float32", freeze_vision=False, freeze_projector=False)
