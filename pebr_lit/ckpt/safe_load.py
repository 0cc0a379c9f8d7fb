"""Read a checkpoint file without running code from it: ``torch.load(weights_only=True)``, errors naming the path.

Every checkpoint pebr-lit reads (``init_from``, export, ``--ckpt_path`` resumes, FSDP2's key check) goes through
``load_checkpoint_file``. ``weights_only=True`` unpickles tensors, containers and numbers only, so a crafted
``.ckpt`` whose pickle calls a function (``__reduce__`` -> ``os.system``) is refused instead of run. A pebr-lit
checkpoint needs no class beyond those (``torch.serialization.get_unsafe_globals_in_checkpoint`` of a fit's
``last.ckpt`` is empty; Lightning stores ``hyper_parameters`` as a plain dict, loop and callback states as
dicts): ``SAFE_GLOBALS`` is where one would be registered, and stays empty. Anything that writes into the
checkpoint dict (RNG states included) should use plain dicts, lists, tuples, tensors, numbers and strings.

Also here: ``check_finite`` (a checkpoint holding NaN/inf weights is refused naming the first one) and
``CheckpointError``, the one exception these problems raise, whose message is one line: the path, the problem
and what to do.

Left out on purpose: choosing which file to read (``ckpt.last``), writing (``ckpt.atomic_io``), mapping weights
into a model (``policy.checkpoint``).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from pebr_lit.errors import ConfigError

#: Classes a checkpoint may hold beyond what weights_only allows by default (none so far; see the docstring).
SAFE_GLOBALS: list[Any] = []
_WHAT_TO_DO = "Point it at a Lightning checkpoint (.ckpt) written by pebr-lit, e.g. <run>/checkpoints/last.ckpt."


class CheckpointError(ConfigError):
    """A checkpoint that is missing, damaged, unsafe or holds non-finite weights; the message names its path."""


def load_checkpoint_file(path: str | Path, what: str = "checkpoint", mmap: bool = False) -> dict[str, Any]:
    """The dict stored in ``path``, read with ``weights_only=True``; ``CheckpointError`` naming it otherwise.

    Args:
        path: a ``.ckpt`` file written by ``torch.save`` (Lightning's or pebr-lit's).
        what: the setting the path came from (``init_from``, ``ckpt_path``, ``--ckpt``), named in errors.
        mmap: map tensor storage instead of reading it (cheap structure checks; tensors read on access).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what}={str(path)!r} does not exist. {_WHAT_TO_DO}")
    if path.is_dir():
        raise CheckpointError(f"{what}={str(path)!r} is a directory, not a checkpoint file. {_WHAT_TO_DO}")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))
        first = f"it calls {found.group(1)}" if found else _first_sentence(err)
        raise CheckpointError(
            f"{what}={str(path)!r} holds objects other than tensors and plain values, which loading would run as "
            f"code ({first}); refused. Use a checkpoint written by pebr-lit, or one from a source you trust "
            "re-saved as tensors only."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"{what}={str(path)!r} is damaged or not a torch checkpoint ({_first_sentence(err)}). "
            "Use an earlier checkpoint of the run, or write this one again."
        ) from None
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        raise CheckpointError(f"{what}={str(path)!r} holds a {kind}, not a checkpoint dict. {_WHAT_TO_DO}")
    return loaded


def require_state_dict(ckpt: dict[str, Any], path: str | Path, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """``ckpt["state_dict"]``, or ``CheckpointError`` saying the file is not a Lightning checkpoint."""
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{what}={str(path)!r} is not a Lightning checkpoint (no 'state_dict'). {_WHAT_TO_DO}")
    return state


def check_finite(tensors: Iterable[tuple[str, Any]], path: str | Path, what: str = "checkpoint") -> None:
    """Raise ``CheckpointError`` naming the first floating tensor holding NaN or inf (and how many do)."""
    bad: list[str] = []
    for name, value in tensors:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad.append(name)
    if bad:
        raise CheckpointError(
            f"{what}={str(path)!r} holds non-finite (NaN/inf) weights: {bad[0]!r}"
            + (f" and {len(bad) - 1} more tensors" if len(bad) > 1 else "")
            + ". Use an earlier checkpoint of the run (one written before the values diverged)."
        )


def _first_sentence(err: BaseException) -> str:
    """The first sentence of an exception's message (torch's add paragraphs of advice), or its type's name."""
    text = " ".join(str(err).split())
    return text.split(". ")[0].rstrip(".") if text else type(err).__name__
