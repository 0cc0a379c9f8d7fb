"""Write checkpoints whole or not at all (temp file beside the target, fsync, rename); read them safely.

``AtomicCheckpointIO`` is the ``CheckpointIO`` plugin ``cli.py`` puts on every trainer whose strategy uses
Lightning's default one. A save writes ``.<name>.tmp-<pid>`` in the target's own directory, flushes it to disk
and renames it over the target (``os.replace``: atomic on one filesystem), so a process killed mid-write, or a
disk that fills, leaves the previous file under the name untouched and at most a hidden temp file, which the
next save into that directory removes when its writer is dead. Lightning's own save goes through a temp file
in ``/tmp`` and ``shutil.move``, a copy when ``/tmp`` is another filesystem, which a full disk cuts short under
the final name.

A load reads with ``weights_only=True`` (``ckpt.safe_load``), names the path in every error and refuses a
checkpoint whose weights hold NaN/inf, right after reading them.

Left out on purpose: which file ``--ckpt_path last`` means (``ckpt.last``); distributed (sharded) checkpoints,
written by the strategy itself.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from pebr_lit.ckpt.safe_load import check_finite, load_checkpoint_file, require_state_dict

_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before the rename: a hidden file in the same directory, named for this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` that never leaves a partial file under ``path``.

    A failed write (``OSError``, e.g. ENOSPC) removes the temp file and raises an ``OSError`` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(path.parent)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(
            err.errno,
            f"writing checkpoint {path} failed ({err.strerror or err}); the previous file under that name is "
            "unchanged. Free space in that directory (or point the checkpoints elsewhere) and resume with "
            "--ckpt_path last",
        ) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_dead_temps(directory: Path) -> list[Path]:
    """Delete temp files in ``directory`` left by writers that are no longer running; returns what was removed."""
    removed = []
    for entry in directory.iterdir() if directory.is_dir() else ():
        match = _TEMP.match(entry.name)
        if match and not pid_alive(int(match.group("pid"))):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (or exists under another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_resume_checkpoint(path: str | Path, what: str = "ckpt_path", mmap: bool = False) -> dict[str, Any]:
    """A checkpoint to resume from: safe-loaded, a Lightning checkpoint, with finite weights (``CheckpointError``).

    ``mmap``: map the file instead of reading it (a check that touches the weights only, not optimizer states).
    """
    ckpt = load_checkpoint_file(path, what, mmap=mmap)
    check_finite(require_state_dict(ckpt, path, what).items(), path, what)
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with atomic writes and safe, checked reads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint does not take storage_options (local files only).")
        save_atomic(checkpoint, path)

    def load_checkpoint(self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        # weights_only is always True here: no caller may unpickle code from a checkpoint file
        return read_resume_checkpoint(path)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
