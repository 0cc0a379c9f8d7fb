"""A checkpoint whose pickle runs a shell command when loaded unsafely: what a crafted ``.ckpt`` does.

Left out on purpose: any assertion (the tests that use it check that the marker file is never created).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


class Payload:
    """Unpickling this calls ``os.system`` and creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious(path: Path, marker: Path) -> Path:
    """A Lightning-shaped checkpoint at ``path`` whose unsafe loading (full unpickling) creates ``marker``."""
    torch.save({"state_dict": {"policy.model.w": torch.zeros(2)}, "payload": Payload(marker)}, path)
    return path
