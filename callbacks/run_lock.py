"""RunDirLock: a fit holds its run directory for as long as it writes there; a second fit into it is refused.

``cli.py`` adds this callback to every trainer, so no config needs to name it, and calls ``acquire`` just
before ``trainer.fit``, before the logger or any callback writes (the saved ``config.yaml``, ``metrics.csv``,
checkpoints): global rank 0 takes ``pebr_lit.ckpt.run_lock.RunLock`` on the trainer's log directory and on
every checkpoint folder configured outside it. A trainer driven without the CLI takes it at ``setup("fit")``
(after the logger has created its folder, before anything is written), where every rank hears whether rank 0
did, so all stop together with the same message. The lock is released at teardown and on an exception; a
``kill -9`` leaves the file, which the next fit takes over.

Left out on purpose: ``validate``/``test``/``predict`` (they write under ``<run>/<subcommand>/`` and do not
touch a fit's files); locking itself (``pebr_lit.ckpt.run_lock``).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from pebr_lit.ckpt.run_lock import RunLock, RunLockedError


class RunDirLock(Callback):
    """Lock the run directory of a fit (``<log_dir>/.fit.lock``: pid and host of the writer)."""

    def __init__(self) -> None:
        self.locks: list[RunLock] = []

    def acquire(self, trainer: L.Trainer) -> None:
        """On global rank 0, lock the run's directories now (``RunLockedError`` naming the holder); else nothing."""
        if self.locks or not trainer.is_global_zero:
            return
        try:
            for directory in run_directories(trainer):
                lock = RunLock(directory)
                lock.acquire()
                self.locks.append(lock)
        except RunLockedError:
            self.release()
            raise

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        refusal = None
        try:
            self.acquire(trainer)  # already held when cli.py took it before trainer.fit
        except RunLockedError as err:
            refusal = str(err)
        refusal = trainer.strategy.broadcast(refusal)
        if refusal:
            raise RunLockedError(refusal)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.release()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.release()

    def release(self) -> None:
        for lock in self.locks:
            lock.release()
        self.locks = []


def run_directories(trainer: L.Trainer) -> list[Path]:
    """The trainer's log directory and each explicitly configured checkpoint folder outside it."""
    root = Path(trainer.log_dir or trainer.default_root_dir).resolve()
    found = [root]
    for callback in trainer.checkpoint_callbacks:
        dirpath = getattr(callback, "dirpath", None) if isinstance(callback, ModelCheckpoint) else None
        if dirpath and not Path(dirpath).resolve().is_relative_to(root):
            found.append(Path(dirpath).resolve())
    return found
