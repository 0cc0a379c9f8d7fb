"""Stage identity: what a GRPO stage started from, recorded in its checkpoints and checked on resume.

A resumed stage restores its trained weights, optimizer and step from ``--ckpt_path``, but rebuilds the rest
from the command line: the KL reference policy is the ``init_from`` weights (or the base model) loaded when
the module is built, and the frozen base weights come from ``model_name_or_path``. Resumed with another
``init_from``, the KL anchor moves without a word (the issue's run: KL 1e-4 -> 5.2). So every checkpoint
holds the stage's identity and a resume with a different one is refused, naming the field, the saved value,
the given value and what to do:

- ``init_from``: the path as given and the SHA-256 of the file (the file's content decides; a moved file
  with the same bytes resumes, a rewritten one at the same path does not);
- ``base_model``: the policy's ``model_name_or_path``;
- ``reference``: how the KL reference is held (the ``ReferencePolicy`` strategy's class, or none).

Left out on purpose: the data stream (``PromptDataModule`` records and checks its own fingerprint: pool
size, qid hash, batch size, seed), the reference weights of a scheduled reference (``ReferencePolicy``
saves them), and evaluation from a checkpoint (``validate``/``test`` take any checkpoint's weights).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

#: Checkpoint key of the identity dict.
KEY = "pebr_stage"


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def init_identity(init_from: str | None) -> dict[str, Any]:
    """The ``init_from`` part of the identity (hashing the file once, when the module is built)."""
    if not init_from:
        return {"init_from": None, "init_from_sha256": None}
    return {"init_from": str(init_from), "init_from_sha256": file_sha256(init_from)}


def stage_identity(init: dict[str, Any], base_model: str, reference: str | None) -> dict[str, Any]:
    """The whole identity saved in a checkpoint: ``init_identity``'s part, the base model and the reference."""
    return {**init, "base_model": base_model, "reference": reference}


def _given(field: str, value: Any) -> str:
    return "null (no init_from)" if field == "init_from" and value is None else repr(value)


def check_identity(saved: dict[str, Any] | None, now: dict[str, Any], ckpt_path: str | None) -> list[str]:
    """Raise ``ValueError`` naming every field where ``now`` differs from the checkpoint's ``saved`` identity.

    Returns the notes for a resume that is allowed but worth a line (``init_from`` moved, same bytes); a
    checkpoint from before identities (``saved`` is None) gives a note too.
    """
    where = ckpt_path or "the checkpoint"
    if saved is None:
        return [f"{where} records no stage identity (written before pebr-lit recorded one): init_from is not checked."]
    problems, notes = [], []
    if saved.get("init_from_sha256") != now.get("init_from_sha256"):
        if saved.get("init_from") is not None and saved.get("init_from") == now.get("init_from"):
            problems.append(
                f"init_from: the file {saved['init_from']!r} has changed since the stage started "
                f"(sha256 {str(saved['init_from_sha256'])[:12]}… saved, {str(now['init_from_sha256'])[:12]}… now)"
            )
        else:
            problems.append(
                f"init_from: saved {_given('init_from', saved.get('init_from'))}, "
                f"given {_given('init_from', now.get('init_from'))}"
            )
    elif saved.get("init_from") != now.get("init_from"):
        notes.append(
            f"init_from {now.get('init_from')!r} holds the same bytes as the stage's {saved.get('init_from')!r} "
            "(moved or copied): resuming."
        )
    for field in ("base_model", "reference"):
        if field in saved and saved[field] != now.get(field):
            problems.append(f"{field}: saved {saved[field]!r}, given {now.get(field)!r}")
    if problems:
        fix = (
            f"--model.init_args.init_from={saved['init_from']}"
            if saved.get("init_from")
            else "--model.init_args.init_from=null"
        )
        raise ValueError(
            f"--ckpt_path {where}: this command would resume the stage from other starting weights, so the KL "
            f"reference (rebuilt from init_from) or the frozen base would not be the stage's: "
            f"{'; '.join(problems)}. Resume with the stage's own settings ({fix}, the same "
            "policy.model_name_or_path and ReferencePolicy), or start a new stage from this checkpoint's weights "
            "with --model.init_args.init_from=<ckpt> and no --ckpt_path."
        )
    return notes
