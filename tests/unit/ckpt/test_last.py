"""``--ckpt_path last``: the newest good checkpoint in the folder, with a warning naming what was passed over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pebr_lit.ckpt.atomic_io import save_atomic
from pebr_lit.ckpt.last import check_ckpt_path, resolve_last
from pebr_lit.ckpt.safe_load import CheckpointError


def _write(path: Path, step: int, age_s: float, value: float = 1.0) -> Path:
    """A checkpoint of ``step`` whose mtime is ``age_s`` seconds in the past."""
    save_atomic({"state_dict": {"policy.model.w": torch.full((8,), value)}, "global_step": step}, path)
    stamp = path.stat().st_mtime - age_s
    os.utime(path, (stamp, stamp))
    return path


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def test_good_last_is_used_silently(tmp_path, recwarn):
    _write(tmp_path / "epoch=0-step=4.ckpt", 4, age_s=1)
    last = _write(tmp_path / "last.ckpt", 4, age_s=1)  # written in the same second as the step file
    assert resolve_last(tmp_path) == last
    assert not [w for w in recwarn if "ckpt_path=last" in str(w.message)]


def test_truncated_last_falls_back_to_the_newest_good_checkpoint(tmp_path):
    _write(tmp_path / "epoch=0-step=2.ckpt", 2, age_s=20)
    step4 = _write(tmp_path / "epoch=0-step=4.ckpt", 4, age_s=10)
    last = _write(tmp_path / "last.ckpt", 6, age_s=0)
    _truncate(last)
    with pytest.warns(UserWarning, match=r"last\.ckpt is not usable \(is damaged .*\); resuming from .*step=4\.ckpt"):
        assert resolve_last(tmp_path) == step4


def test_last_with_nan_weights_is_passed_over_too(tmp_path):
    step4 = _write(tmp_path / "epoch=0-step=4.ckpt", 4, age_s=10)
    _write(tmp_path / "last.ckpt", 6, age_s=0, value=float("nan"))
    with pytest.warns(UserWarning, match=r"last\.ckpt is not usable \(holds non-finite"):
        assert resolve_last(tmp_path) == step4


def test_without_last_the_newest_step_checkpoint_is_used(tmp_path):
    _write(tmp_path / "epoch=0-step=2.ckpt", 2, age_s=20)
    step4 = _write(tmp_path / "epoch=0-step=4.ckpt", 4, age_s=10)
    (tmp_path / ".last.ckpt.tmp-99999999").write_bytes(b"half")  # a killed writer's temp file is never a candidate
    with pytest.warns(UserWarning, match=r"no last\.ckpt in .*; resuming from .*step=4\.ckpt"):
        assert resolve_last(tmp_path) == step4


def test_nothing_good_is_an_error_listing_each_file(tmp_path):
    _truncate(_write(tmp_path / "epoch=0-step=2.ckpt", 2, age_s=20))
    _truncate(_write(tmp_path / "last.ckpt", 4, age_s=0))
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* can be resumed from \(last\.ckpt: .*; epoch=0-"):
        resolve_last(tmp_path)


def test_an_empty_folder_starts_fresh_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match=r"no checkpoint in .*; none is loaded \(a fit starts from step 0\)"):
        assert resolve_last(tmp_path / "checkpoints") is None


def test_explicit_ckpt_path_is_checked_as_given(tmp_path):
    for special in (None, "", "last", "best", "hpc"):
        check_ckpt_path(special)
    check_ckpt_path(tmp_path)  # a folder: a distributed checkpoint, read by the strategy
    good = _write(tmp_path / "a.ckpt", 1, age_s=0)
    check_ckpt_path(str(good))
    _truncate(good)
    with pytest.raises(CheckpointError, match=r"^ckpt_path='.*a\.ckpt' is damaged"):
        check_ckpt_path(str(good))
    torch.save({"weights": {}}, tmp_path / "b.ckpt")
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        check_ckpt_path(str(tmp_path / "b.ckpt"))
