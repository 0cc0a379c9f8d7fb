"""One writer per run directory: ``<run>/.fit.lock``, holding the writer's pid and host, and an advisory lock.

A second fit into a directory another live fit holds is refused with ``RunLockedError`` naming the directory
and the holder. The lock is an ``flock`` on the open file (released by the kernel when its process dies, even
by ``kill -9``), and the file's text names the holder for the message. A lock file left by a process that is
no longer running (its flock gone, its pid dead on this host) is taken over with a warning naming it. A file
whose flock is free but whose pid is alive on this host, or that names another host, is refused: the lock may
be on a filesystem without working flocks (some network mounts), so the recorded holder is believed.

Left out on purpose: when a fit takes and releases the lock (``callbacks.run_lock.RunDirLock``); Windows,
where there is no ``fcntl`` and only the pid/host record protects the directory.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from lightning.pytorch.utilities import rank_zero_warn

from pebr_lit.ckpt.atomic_io import pid_alive
from pebr_lit.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".fit.lock"


class RunLockedError(ConfigError):
    """The run directory is being written by another fit."""


class RunLock:
    """Exclusive lock on a run directory while a fit writes it.

    Args:
        directory: The run directory (config.yaml, metrics, checkpoints/ live under it).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock or raise ``RunLockedError`` naming the directory and the holder."""
        if self.held:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _describe(_read(handle))
                handle.close()
                raise RunLockedError(self._refusal(holder)) from None
        previous = _read(handle)
        if previous and not self._stale(previous):
            handle.close()
            raise RunLockedError(self._refusal(_describe(previous)))
        if previous:
            rank_zero_warn(
                f"{self.path}: taking over the lock of {_describe(previous)}, which is no longer running "
                "(killed or crashed); its checkpoints stay, the newest good one is what --ckpt_path last resumes."
            )
        handle.seek(0)
        handle.truncate()
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        self._handle = handle

    def release(self) -> None:
        """Give the lock up and remove the file (a no-op when not held)."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        self.path.unlink(missing_ok=True)
        handle.close()

    def _stale(self, record: dict[str, Any]) -> bool:
        """True when the recorded holder is certainly gone: this host, and its pid not running."""
        if record.get("host") != socket.gethostname():
            return False
        pid = record.get("pid")
        if not isinstance(pid, int):
            return False
        if pid == os.getpid():  # our flock succeeded, so no other handle in this process holds the lock
            return fcntl is not None
        return not pid_alive(pid)

    def _refusal(self, holder: str) -> str:
        return (
            f"run directory {self.directory} is being written by another fit ({holder}; lock file {self.path}). "
            "Wait for it to finish, give this fit another directory (trainer.logger.init_args.save_dir or "
            "name), or delete the lock file if that process is certainly gone."
        )


def _read(handle: IO[str]) -> dict[str, Any]:
    handle.seek(0)
    text = handle.read().strip()
    if not text:
        return {}
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}
    return record if isinstance(record, dict) else {"unreadable": text[:80]}


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "a process that has not written its pid yet"
    if "unreadable" in record:
        return f"an unreadable lock record {record['unreadable']!r}"
    return f"pid {record.get('pid')} on host {record.get('host')}, since {record.get('started', '?')}"
