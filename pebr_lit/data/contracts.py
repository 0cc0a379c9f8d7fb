"""What a DataModule needs from the LightningModule it serves, as Protocols the modules implement.

A DataModule attached to a ``Trainer`` reads these off ``trainer.lightning_module`` through ``served_module``,
which checks the module against the Protocol first and names what is missing. Values known when the
classes are built are linked by the CLI instead (``cli.py``: ``model.processor -> data.init_args.processor``);
``ProcessorSource`` is the same value for a DataModule built in Python and handed to ``Trainer.fit``.

Left out on purpose: the DataModules (``data.*_datamodule``, ``eval.datamodule``) and the modules themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import lightning as L


@runtime_checkable
class ProcessorSource(Protocol):
    """A module whose policy's processor tokenises the prompts (every pebr-lit module)."""

    @property
    def processor(self) -> Any:
        """The policy's Hugging Face processor (tokenizer + image processor)."""


@runtime_checkable
class RolloutProgress(Protocol):
    """A module that counts finished rollout batches, so a resumed stream starts after them (``GRPOModule``)."""

    #: Rollout batches whose update is done (restored from checkpoints).
    rollout_batches: int


@runtime_checkable
class TierDefaults(Protocol):
    """A GRPO stage that names its own difficulty tiers (``PerceptionGRPO``: easy, ``ReasoningGRPO``: medium)."""

    #: Tiers a ``TieredDataModule`` with ``tiers: null`` trains on.
    default_tiers: Sequence[str]


@runtime_checkable
class BenchmarkSource(Protocol):
    """A module that holds the benchmarks to evaluate and the questions already answered (``EvalModule``)."""

    #: Benchmark adapters in loader order (``eval.benchmarks.base.Benchmark``: ``name``, ``items()``).
    benchmarks: Sequence[Any]

    def answered(self, bench: int) -> frozenset[int]:
        """Positions of benchmark ``bench``'s questions answered by an earlier run."""


def _members(contract: type) -> list[str]:
    own = {k: v for k, v in vars(contract).items() if not k.startswith("_")}
    names = [k for k, v in own.items() if callable(v) or isinstance(v, property)]
    return [*getattr(contract, "__annotations__", {}), *names]


def served_module(datamodule: L.LightningDataModule, contract: type, fix: str) -> Any:
    """The attached LightningModule, checked against ``contract``; ``fix`` says what to do when it falls short."""
    trainer = datamodule.trainer
    module = trainer.lightning_module if trainer is not None else None
    owner = type(datamodule).__name__
    if module is None:
        raise RuntimeError(f"{owner} is attached to no LightningModule: it needs one with {contract.__name__}. {fix}")
    missing = [name for name in _members(contract) if not hasattr(module, name)]
    if missing:
        raise TypeError(
            f"{owner}: the module {type(module).__name__} lacks {', '.join(missing)} "
            f"({contract.__name__}, pebr_lit.data.contracts). {fix}"
        )
    return module


def processor_for(datamodule: L.LightningDataModule) -> Any:
    """``datamodule.processor`` when set (by the CLI link or by hand), else the attached module's."""
    if getattr(datamodule, "processor", None) is not None:
        return datamodule.processor
    fix = "Attach it to a Trainer with a pebr-lit module, or pass processor= (the policy's processor)."
    return served_module(datamodule, ProcessorSource, fix).processor
