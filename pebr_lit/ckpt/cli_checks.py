"""What ``cli.py`` does about checkpoint files: early checks, one-line errors, atomic saving, resolving ``last``.

- ``early_checks(config)``: before any class is built, ``model.init_args.init_from`` and an explicit
  ``ckpt_path`` must exist and load safely as pebr-lit/Lightning checkpoints (tensors mapped, not read), and a
  CLIP scorer's path-looking model value must be an existing directory.
- ``short_errors()``: a ``ConfigError`` anywhere down an exception's causes (jsonargparse wraps errors raised in
  a module's ``__init__`` into an 80-line dump of the config) is printed alone, ``error: <message>``, exit 2.
- ``install_atomic_io(trainer)``: a strategy with Lightning's default ``TorchCheckpointIO`` gets
  ``AtomicCheckpointIO`` (a plugin the config chose itself is left as it is).
- ``resolve_ckpt_path(trainer, value)``: ``last`` -> the newest good file in the trainer's checkpoint folder.
- ``stopped_by_sigterm(trainer)``: a run that SIGTERM stopped exits 143 with a one-line message, not 0 (Lightning's
  ``SIGTERMException`` is a bare ``SystemExit``, so a killed fit looked finished to a script or the demo driver).

Left out on purpose: the checks themselves (``ckpt.safe_load``, ``ckpt.last``, ``clip.loading``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from pebr_lit.ckpt.atomic_io import AtomicCheckpointIO
from pebr_lit.ckpt.last import check_ckpt_path, resolve_last
from pebr_lit.errors import ConfigError
from pebr_lit.policy.checkpoint import read_policy_state

#: init_args keys that hold a CLIP scorer's model location, by scorer.
CLIP_SOURCE_KEYS = ("model", "path", "model_name_or_path")


def early_checks(config: Any) -> None:
    """Check the files a subcommand's config names before anything is built (``ConfigError`` on a bad one)."""
    init_from = _get(config, "model.init_args.init_from")
    if init_from:
        read_policy_state(init_from, "init_from", check_values=False)
    check_ckpt_path(_get(config, "ckpt_path"))
    scorer = _get(config, "model.init_args.clip_scorer")
    if scorer is not None and _get(scorer, "init_args") is not None:
        from pebr_lit.clip.loading import check_local_source

        name = str(_get(scorer, "class_path") or "clip_scorer").rsplit(".", 1)[-1]
        for key in CLIP_SOURCE_KEYS:
            value = _get(scorer, f"init_args.{key}")
            if isinstance(value, str):
                check_local_source(value, f"{name}.{key}")


def find_config_error(err: BaseException) -> ConfigError | None:
    """The first ``ConfigError`` among ``err`` and its causes/contexts."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        current = stack.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConfigError):
            return current
        stack += [current.__cause__, current.__context__]
    return None


@contextlib.contextmanager
def short_errors() -> Iterator[None]:
    """Print a ``ConfigError`` (however deep in the causes) as one ``error:`` line and exit with status 2."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - re-raised unless a ConfigError is found
        found = find_config_error(err)
        if found is None:
            raise
        print(f"error: {found}", file=sys.stderr)
        raise SystemExit(2) from None


@contextlib.contextmanager
def stopped_by_sigterm(trainer: Any) -> Iterator[None]:
    """Turn Lightning's exit-status-0 ``SIGTERMException`` into status 143 (128 + SIGTERM); say how to resume."""
    try:
        yield
    except SIGTERMException:
        print(
            f"error: stopped by SIGTERM at global step {trainer.global_step}, before the run finished; "
            "rerun the same command with --ckpt_path last to continue from the newest checkpoint",
            file=sys.stderr,
        )
        raise SystemExit(128 + signal.SIGTERM) from None


def install_atomic_io(trainer: Any) -> None:
    """Give ``trainer``'s strategy atomic checkpoint writes and safe reads, unless it has its own plugin."""
    strategy = trainer.strategy
    if type(getattr(strategy, "checkpoint_io", None)) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()


def resolve_ckpt_path(trainer: Any, value: Any) -> Any:
    """``value``, with ``last`` replaced by the newest good checkpoint (``None``: none there, start fresh)."""
    if value != "last":
        return value
    folders = [checkpoint_folder(trainer, cb) for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
    folders = [f for f in folders if f is not None]
    if not folders:
        return value  # no ModelCheckpoint: Lightning says there is no last checkpoint
    return resolve_last(folders[0])


def checkpoint_folder(trainer: Any, callback: ModelCheckpoint) -> Path | None:
    """Where ``callback`` writes: its ``dirpath``, or the folder Lightning derives from the logger (before setup)."""
    if callback.dirpath:
        return Path(callback.dirpath)
    resolve = getattr(callback, "_ModelCheckpoint__resolve_ckpt_dir", None)  # Lightning's own rule, private
    return Path(resolve(trainer)) if resolve is not None else None


def _get(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if node is None:
            return None
        node = node.get(part) if hasattr(node, "get") else getattr(node, part, None)
    return node
