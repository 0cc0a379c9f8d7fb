"""Bad records at set-up: the DataModules' ``on_bad_record`` option, its report file, and its counts.

After a validation pass (``data.validation``) found problems:

- ``error`` (the default): one ``BadRecords`` error quoting the first ``validation.SHOWN`` problems with
  their count, and every problem listed in a report file whose path the message gives;
- ``skip``: the bad rows are left out, one warning gives their count, the first rows and the report file
  (which lists every one), and the DataModule keeps the count (``bad_records[split]``) and logs it with the
  run's hyperparameters (``hparams.yaml``: ``data/bad_records/<split>``).

A file that cannot be read at all (missing, not JSON, a broken Parquet) is an error under both: it has no
rows to skip. An empty file is an error under ``error`` and a warning under ``skip``.

Left out on purpose: the checks themselves (``data.validation``), text-only rows (``data.text_only``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from lightning.pytorch.utilities import rank_zero_warn

from pebr_lit.data.sources import RecordError
from pebr_lit.data.validation import Problem, Validation, problems_message, write_report

OnBadRecord = Literal["error", "skip"]
#: The DataModules' default: a run never trains on less than its files hold without being told to.
ON_BAD_RECORD_DEFAULT: OnBadRecord = "error"
#: Bad rows named in the warning of a skip (the report file holds all of them).
WARN_SHOWN = 3

SKIP_FIX = "Fix the rows, or set data.init_args.on_bad_record: skip to run without them (they are counted and listed)"
FATAL_FIX = "Fix or replace the file(s): a file that cannot be read has no rows to skip"


class BadRecords(RecordError):
    """Every problem a validation pass found, in one message (``problems`` holds them all)."""

    def __init__(self, message: str, problems: tuple[Problem, ...]) -> None:
        first = problems[0] if problems else Problem("<records>", None, "no problem", "")
        self.source, self.problem, self.fix, self.field = first.source, first.problem, first.fix, first.field
        self.problems = problems
        ValueError.__init__(self, message)

    def __reduce__(self):  # picklable, as RecordError is
        return (BadRecords, (str(self), self.problems))


def check_on_bad_record(owner: str, value: str) -> OnBadRecord:
    """``value`` when it is an ``OnBadRecord`` choice, else a ``ValueError`` naming ``owner`` (a class name)."""
    choices = get_args(OnBadRecord)
    if value not in choices:
        raise ValueError(
            f"{owner}.on_bad_record={value!r}: not a choice. Use one of {list(choices)} "
            "(error: refuse the run and list every bad row; skip: leave the bad rows out, counted and listed)."
        )
    return value  # type: ignore[return-value]


def settle(
    validation: Validation, on_bad_record: OnBadRecord, report: Path | None, where: str = "", write: bool = True
) -> None:
    """Write the report and raise ``BadRecords`` or warn, as ``on_bad_record`` says; nothing when all is well.

    ``write``: write the report file (false on all ranks but one, which writes the same list).
    """
    if not validation.problems:
        return
    if report is not None and write:
        write_report(validation, report, {"split": where} if where else None)
    fatal = validation.fatal
    if fatal or on_bad_record == "error":
        message = problems_message(validation, report, FATAL_FIX if fatal else SKIP_FIX)
        raise BadRecords(f"{where}: {message}" if where else message, tuple(validation.problems))
    bad = validation.bad_rows
    shown = ", ".join(bad[:WARN_SHOWN]) + (", ..." if len(bad) > WARN_SHOWN else "")
    others = [p.line() for p in validation.problems if not p.is_row]
    listed = f"; every one is listed in {report}" if report is not None else ""
    rank_zero_warn(
        f"{where + ': ' if where else ''}skipped {len(bad)} bad row(s) of {validation.rows}, as on_bad_record: skip "
        f"says{listed}: {shown or 'none'}" + "".join(f"\n  {line}" for line in others)
    )


def report_path(datamodule: Any, folder: str | None, split: str) -> Path | None:
    """``<folder>/<split>.jsonl``; ``folder`` null = ``<trainer log dir>/bad_records``, or no file for a DataModule
    used without a trainer (the message then says so). Call it on every rank: the trainer's log dir is a collective.
    """
    if folder is None:
        trainer = getattr(datamodule, "trainer", None)
        base = getattr(trainer, "log_dir", None) or getattr(trainer, "default_root_dir", None)
        if base is None:
            return None
        folder = str(Path(base) / "bad_records")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in split) or "records"
    return Path(folder) / f"{name}.jsonl"


def log_count(datamodule: Any, split: str, count: int) -> None:
    """Keep ``count`` in ``datamodule.bad_records`` and log it with the run's hyperparameters (rank zero)."""
    datamodule.bad_records[split] = count
    trainer = getattr(datamodule, "trainer", None)
    if trainer is not None and getattr(trainer, "is_global_zero", True):
        for logger in getattr(trainer, "loggers", ()):
            logger.log_hyperparams({f"data/bad_records/{split}": count})
