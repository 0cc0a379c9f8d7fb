"""Atomic checkpoint writes: a disk filling or a kill -9 mid-write leaves the previous file whole."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pebr_lit.ckpt.atomic_io import AtomicCheckpointIO, remove_dead_temps, save_atomic, temp_path
from pebr_lit.ckpt.safe_load import CheckpointError, load_checkpoint_file

ROOT = Path(__file__).resolve().parents[3]


def _ckpt(value: float) -> dict:
    return {"state_dict": {"policy.model.w": torch.full((256, 256), value)}, "global_step": int(value)}


def _half_then(exc: BaseException):
    """A torch.save that writes half of the real bytes to the file, then raises ``exc`` (disk full, a kill)."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        import io

        buffer = io.BytesIO()
        real(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        raise exc

    return save


def test_disk_full_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_ckpt(1.0), path)
    monkeypatch.setattr(torch, "save", _half_then(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError, match=r"writing checkpoint .*last\.ckpt failed \(No space left on device\)") as err:
        io.save_checkpoint(_ckpt(2.0), path)
    assert err.value.errno == errno.ENOSPC and "previous file under that name is unchanged" in str(err.value)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["global_step"] == 1  # whole, and the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left


def test_killed_mid_write_keeps_the_previous_checkpoint(tmp_path):
    """A subprocess writes a checkpoint, starts the next one, is SIGKILLed halfway through writing it."""
    folder, started = tmp_path / "checkpoints", tmp_path / "started"
    path = folder / "last.ckpt"
    script = f"""
import time, torch, io
from pebr_lit.ckpt.atomic_io import save_atomic
save_atomic({{"state_dict": {{"w": torch.ones(256, 256)}}, "global_step": 1}}, {str(path)!r})
real = torch.save
def slow(obj, f, *a, **k):
    buf = io.BytesIO(); real(obj, buf); f.write(buf.getvalue()[:1000]); f.flush()
    open({str(started)!r}, "w").close()
    time.sleep(60)
torch.save = slow
save_atomic({{"state_dict": {{"w": torch.zeros(256, 256)}}, "global_step": 2}}, {str(path)!r})
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the writer never started its second save"
            time.sleep(0.05)
        temp = folder / f".last.ckpt.tmp-{proc.pid}"
        assert temp.is_file()  # the half-written file is the temp, never last.ckpt
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert load_checkpoint_file(path)["global_step"] == 1
    assert remove_dead_temps(folder) == [temp] and sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]


def test_a_live_writers_temp_is_kept(tmp_path):
    mine = temp_path(tmp_path / "x.ckpt")  # this process is alive
    mine.write_bytes(b"partial")
    assert remove_dead_temps(tmp_path) == [] and mine.exists()


def test_load_refuses_non_finite_weights_naming_the_file(tmp_path):
    path = tmp_path / "nan.ckpt"
    bad = _ckpt(1.0)
    bad["state_dict"]["policy.model.w"][0, 0] = float("nan")
    save_atomic(bad, path)
    with pytest.raises(CheckpointError, match=r"^ckpt_path='.*nan\.ckpt' holds non-finite \(NaN/inf\) weights: 'pol"):
        AtomicCheckpointIO().load_checkpoint(path)
