"""ResumableCSVLogger: a stage's ``metrics.csv`` that continues across ``--ckpt_path`` resumes, never deleted.

Lightning's ``CSVLogger`` with a fixed ``version`` deletes an existing ``metrics.csv`` when it starts, so a
resumed stage lost every row from before the crash (and the report its curves). This logger appends instead:

- the existing file's header is kept (a new metric widens it, rewriting the file once, atomically);
- the first row this run logs, at step ``s``, says where the run (re)starts: existing rows at steps >= ``s``
  were written by a run killed after its last checkpoint and are redone now, so they move to
  ``metrics.superseded-<k>.csv`` beside it (a warning names the file and the count); a fresh run into a
  used directory (``s`` = 0) so moves the old log aside whole. Every step then has its row exactly once;
- a torn last line (a kill inside a write) is cut off with a warning;
- rows are flushed every step by default (``flush_logs_every_n_steps: 1``), so a kill loses none of the
  steps its checkpoints hold, except a row killed in the moment between a checkpoint's write and that step's
  flush: such a gap in the steps before ``s`` is named in a warning at the resume, not filled.

Left out on purpose: hyper-parameter files (``hparams.yaml`` is rewritten as before), other loggers, and
reading the logs (``pebr_lit.demo.report.read_metrics``).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_warn


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return None


def _write_rows(path: Path, fieldnames: list[str], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` through a temporary file in the same folder and a rename (never half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cut_torn_line(path: Path) -> None:
    """Cut a last line without its newline (a kill inside a write) off ``path``, with a warning."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(keep)
    rank_zero_warn(f"{path}: cut a torn last line ({len(data) - keep} bytes of an interrupted write).")


class AppendingWriter(ExperimentWriter):
    """Lightning's CSV experiment writer, appending to an existing ``metrics.csv``; see the module docstring."""

    def __init__(self, log_dir: str) -> None:
        self._continued = False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        path = Path(self.metrics_file_path)
        if path.is_file():
            _cut_torn_line(path)
            with open(path, newline="") as f:
                self.metrics_keys = sorted(csv.DictReader(f).fieldnames or [])

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if not self._continued and step is not None:
            self._continued = True
            self._continue_at(step)
        super().log_metrics(metrics_dict, step)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        path = Path(self.metrics_file_path)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        _write_rows(path, fieldnames, rows)

    def _continue_at(self, start: int) -> None:
        """Move rows at steps >= ``start`` aside (redone by this run); warn about steps before it without a row."""
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fieldnames = list(reader.fieldnames or [])
            rows = list(reader)
        kept = [r for r in rows if (_step(r) is None or _step(r) < start)]
        redone = [r for r in rows if not (_step(r) is None or _step(r) < start)]
        if redone:
            k = 1
            while (aside := path.with_name(f"{path.stem}.superseded-{k}.csv")).exists():
                k += 1
            _write_rows(aside, fieldnames, redone)
            _write_rows(path, fieldnames, kept)
            rank_zero_warn(
                f"{path}: {len(redone)} rows at steps >= {start} were logged by an earlier run after its last "
                f"checkpoint (or by an earlier run into this directory) and are redone now; moved to {aside}."
            )
        train_steps = {_step(r) for r in kept if any(k.startswith("train/") and r.get(k) for k in r)}
        if train_steps and start > 0:
            missing = sorted(set(range(min(train_steps), start)) - train_steps)
            if missing:
                rank_zero_warn(
                    f"{path}: no train row for steps {missing[:10]}{' …' if len(missing) > 10 else ''} before this "
                    "run's start: the killed run had not flushed them (flush_logs_every_n_steps > 1, or a kill right "
                    "after a checkpoint). The curves have a gap there."
                )


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to its ``metrics.csv`` across resumes (see the module docstring).

    Args:
        save_dir: Folder the logs go under (``<save_dir>/<name>/<version>/metrics.csv``).
        name: Experiment folder under ``save_dir``; null/"" = none.
        version: Run folder under ``name``; "" = none (the demo's ``runs/demo/<stage>/metrics.csv``),
            null = the next ``version_<n>``.
        prefix: Put at the start of every metric name.
        flush_logs_every_n_steps: Write buffered rows every N steps; 1 = every step (rows survive a kill).
    """

    def __init__(
        self,
        save_dir: str,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 1,
    ) -> None:
        super().__init__(save_dir, name, version, prefix, flush_logs_every_n_steps)

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = AppendingWriter(log_dir=self.log_dir)
        return self._experiment
