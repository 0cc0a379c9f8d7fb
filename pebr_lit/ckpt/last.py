"""Which file ``--ckpt_path last`` resumes from: the newest good checkpoint in the run's checkpoint folder.

Lightning's own ``last`` looks at ``last*.ckpt`` only: without one it starts the stage again from step 0 with a
warning, and a damaged one fails with a raw zip error. Here every ``*.ckpt`` beside it counts, newest first
(``last.ckpt`` first among files written together), and the first that loads safely and holds finite weights
wins. Passing over a file says so in a warning that names both; none good at all is a ``CheckpointError``
naming each file and its problem. No checkpoint at all keeps Lightning's meaning (start fresh, with a warning
naming the folder), so ``--ckpt_path last`` can be set on the first launch too.

Left out on purpose: reading the chosen file for the resume (Lightning, through ``ckpt.atomic_io``); explicit
paths, checked as given (``check_ckpt_path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from pebr_lit.ckpt.atomic_io import read_resume_checkpoint
from pebr_lit.ckpt.safe_load import CheckpointError, load_checkpoint_file

#: ckpt_path values Lightning resolves itself (a file path is anything else).
SPECIAL = ("last", "best", "hpc", "registry")


def candidates(directory: Path) -> list[Path]:
    """Every ``*.ckpt`` file in ``directory``, newest first; ``last*`` before others written at the same time."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if p.suffix == ".ckpt" and p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name.startswith("last")), reverse=True)


def resolve_last(directory: str | Path) -> Path | None:
    """The file ``--ckpt_path last`` should resume from in ``directory``; ``None`` when it holds no checkpoint."""
    directory = Path(directory)
    found = candidates(directory)
    if not found:
        rank_zero_warn(f"ckpt_path=last: no checkpoint in {directory}; none is loaded (a fit starts from step 0).")
        return None
    passed: list[tuple[Path, str]] = []
    for path in found:
        try:
            read_resume_checkpoint(path, "ckpt_path=last", mmap=True)  # Lightning reads the chosen one again
        except CheckpointError as err:
            passed.append((path, str(err)))
            continue
        if passed:
            more = f" ({len(passed) - 1} more passed over)" if len(passed) > 1 else ""
            rank_zero_warn(
                f"ckpt_path=last: {passed[0][0]} is not usable ({_reason(passed[0][1])}); resuming from {path}, the "
                f"newest good checkpoint beside it{more}."
            )
        elif not path.name.startswith("last"):
            rank_zero_warn(
                f"ckpt_path=last: no last.ckpt in {directory}; resuming from {path}, the newest checkpoint there."
            )
        return path
    listed = "; ".join(f"{p.name}: {_reason(r)}" for p, r in passed)
    raise CheckpointError(
        f"ckpt_path=last: no checkpoint in {directory} can be resumed from ({listed}). Start the stage again "
        "without --ckpt_path, or give --ckpt_path a good checkpoint."
    )


def check_ckpt_path(value: Any) -> None:
    """Before any model is built: an explicit ``ckpt_path`` file must exist and load as a Lightning checkpoint.

    A folder (a distributed checkpoint) must exist; ``last``/``best``/``hpc`` and registry names are resolved
    later, by the trainer. Weights are checked finite when Lightning reads them (``ckpt.atomic_io``).
    """
    if not value or str(value) in SPECIAL or str(value).startswith("registry:"):
        return
    path = Path(str(value))
    if path.is_dir():
        return
    ckpt = load_checkpoint_file(path, "ckpt_path", mmap=True)
    if "state_dict" not in ckpt:
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is not a Lightning checkpoint (no 'state_dict'). Give a file from a run's "
            "checkpoints/ folder, e.g. <run>/checkpoints/last.ckpt, or --ckpt_path last."
        )


def _reason(message: str) -> str:
    """The problem part of a ``CheckpointError`` message (after the path, before the advice)."""
    text = message.split("' ", 1)[-1]
    return text.split(". ", 1)[0]
