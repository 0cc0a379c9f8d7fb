"""Preflight: the data paths a DataModule's config names exist, checked before any class (the model) is built.

``missing_data_paths`` reads a DataModule's ``init_args`` as the CLI parsed them and returns one line naming
every record file (``train_files``, ``val_files``, ``test_files``, ``predict_files``) and folder
(``image_root``, ``tiers_dir``) that the subcommand reads and that does not exist, or None; ``cli.py``
prints it and exits before the policy's weights are loaded. The contents (rows, images) are checked later,
at set-up (``data.validation``).

Left out on purpose: tier files inside ``tiers_dir`` (which tiers depends on the module: its set-up names
the missing one), checkpoints and model folders (the module's own checks).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

FILE_ARGS = ("train_files", "val_files", "test_files", "predict_files")
#: The file arguments each subcommand reads (a fit does not need the predict files to exist).
READS = {
    "fit": ("train_files", "val_files", "tiers_dir"),
    "validate": ("val_files", "tiers_dir"),
    "test": ("test_files",),
    "predict": ("predict_files",),
}
FOLDER_ARGS = ("image_root", "tiers_dir")


def _get(init_args: Any, name: str) -> Any:
    if isinstance(init_args, Mapping):
        return init_args.get(name)
    return getattr(init_args, name, None)


def missing_data_paths(data: Any, subcommand: str | None = None) -> str | None:
    """One line naming each missing data path of a ``data`` config (``class_path`` + ``init_args``) that
    ``subcommand`` reads (``READS``; null, classes built without a subcommand: as for ``fit``), or None."""
    init_args = _get(data, "init_args") if data is not None else None
    if init_args is None:
        return None
    reads = READS.get(subcommand or "fit", READS["fit"])
    missing = []
    for name in (n for n in FILE_ARGS if n in reads):
        for i, path in enumerate(_get(init_args, name) or ()):
            if isinstance(path, str) and not os.path.exists(os.path.expanduser(path)):
                missing.append(f"data.init_args.{name}[{i}] {path!r}")
    for name in (n for n in FOLDER_ARGS if n in reads or n == "image_root"):
        path = _get(init_args, name)
        if isinstance(path, str) and not os.path.isdir(os.path.expanduser(path)):
            missing.append(f"data.init_args.{name} {path!r}")
    if not missing:
        return None
    return (
        f"{'; '.join(missing)}: no such file or folder (relative paths start from {os.getcwd()}). "
        "Check the path, or run the step that writes it first (docs/data.md)."
    )
