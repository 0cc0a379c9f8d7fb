"""Safe checkpoint reading: a malicious pickle is refused without running, a damaged file names its path."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import torch

from pebr_lit.ckpt.safe_load import CheckpointError, check_finite, load_checkpoint_file, require_state_dict
from tests.helpers.malicious import write_malicious

ROOT = Path(__file__).resolve().parents[3]


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = write_malicious(tmp_path / "evil.ckpt", marker)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint_file(path, "init_from")
    message = str(err.value)
    assert message.startswith(f"init_from={str(path)!r} holds objects") and "system" in message
    assert "\n" not in message and not marker.exists()
    # the payload is real: an unsafe load does run it (so the refusal above is what kept the marker away)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_file_names_path_and_problem(tmp_path, mmap):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.randn(64, 64)}}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"^ckpt_path='.*bad\.ckpt' is damaged .*Use an earlier checkpoint"):
        load_checkpoint_file(bad, "ckpt_path", mmap=mmap)


def test_missing_directory_and_non_dict_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"init_from='.*nope\.ckpt' does not exist\. Point it at"):
        load_checkpoint_file(tmp_path / "nope.ckpt", "init_from")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint_file(tmp_path, "init_from")
    torch.save([torch.zeros(1)], tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="holds a list, not a checkpoint dict"):
        load_checkpoint_file(tmp_path / "list.ckpt")
    torch.save({"weights": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(CheckpointError, match=r"not a Lightning checkpoint \(no 'state_dict'\)"):
        require_state_dict(load_checkpoint_file(tmp_path / "plain.ckpt"), tmp_path / "plain.ckpt")


def test_plain_states_load_safely(tmp_path):
    # what a checkpoint may carry besides weights: Lightning's dict(hparams), RNG states as tuples and tensors
    path = tmp_path / "plain.ckpt"
    state = {"hyper_parameters": {"lr": 1e-5, "name": "x"}, "python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save({"state_dict": {}, **state}, path)
    loaded = load_checkpoint_file(path)
    assert loaded["python"] == random.getstate() and torch.equal(loaded["torch"], state["torch"])


def test_check_finite_names_the_first_bad_tensor_and_counts_the_rest(tmp_path):
    tensors = [("a", torch.ones(2)), ("b", torch.tensor([1.0, float("nan")])), ("c", torch.tensor([float("inf")]))]
    with pytest.raises(CheckpointError, match=r"holds non-finite \(NaN/inf\) weights: 'b' and 1 more tensors"):
        check_finite(tensors, tmp_path / "x.ckpt", "init_from")
    check_finite([("a", torch.ones(2)), ("steps", torch.tensor([3]))], tmp_path / "x.ckpt")  # ints are not checked


def test_no_unsafe_load_anywhere():
    """Every checkpoint read goes through weights_only=True, tests' own included; no pickle or eval of data."""
    # a pickle round trip of an object made in the same line (DataLoader-worker checks) reads no data
    unsafe = re.compile(r"weights_only\s*=\s*False|pickle\.loads?\((?!pickle\.dumps)|(?<![\w.])eval\(|\bexec\(")
    found = []
    for folder in ("pebr_lit", "callbacks", "benchmarks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name in ("test_safe_load.py",):  # this file names the patterns and loads the payload on purpose
                continue
            found += [
                f"{path.relative_to(ROOT)}:{n}"
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if unsafe.search(line)
            ]
    assert unsafe.search("torch.load(p, weights_only=False)") and not found, found


def test_remote_code_is_off_unless_a_config_sets_it():
    """No model code runs from a checkpoint folder by default; only FG-CLIP's config opts in, on purpose."""
    import inspect

    from pebr_lit.clip.fgclip import FGCLIPScorer
    from pebr_lit.policy.wrapper import PolicyWrapper

    for cls in (PolicyWrapper, FGCLIPScorer):
        assert inspect.signature(cls.__init__).parameters["trust_remote_code"].default is False, cls
    configs = (ROOT / "configs").rglob("*.yaml")
    opted_in = sorted(str(p.relative_to(ROOT)) for p in configs if "trust_remote_code: true" in p.read_text())
    assert opted_in == ["configs/qwen2_5_vl_7b/_stage1.yaml"]
