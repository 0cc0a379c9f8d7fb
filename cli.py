"""pebr-lit command line: ``python cli.py {fit,validate,test,predict} --config configs/....yaml``.

A ``LightningCLI`` over every pebr-lit LightningModule and DataModule (chosen by ``class_path`` in
the config). Stage hand-over is ``model.init_args.init_from: <previous stage>.ckpt`` (weights only);
resuming an interrupted stage is ``--ckpt_path <ckpt>`` (weights, optimizer, step, data position, sampling
random state; refused under another ``init_from``: ``pebr_lit.resume``).
``--print_config`` prints the full resolved config of any command.

Checkpoint files (``pebr_lit.ckpt``): ``init_from``, an explicit ``ckpt_path`` and CLIP directories are checked
before anything is built; a ``ConfigError`` prints as one ``error:`` line (exit 2); checkpoints are written
atomically and read with ``weights_only=True``; ``ckpt_path=last`` means the newest good checkpoint; a fit
locks its run directory (``callbacks.run_lock``).

Composed configs: a YAML whose lines include ``# overlay-of: <base.yaml>`` (path relative to the
YAML's own folder) is an overlay; ``--config overlay.yaml`` means ``--config base.yaml --config
overlay.yaml`` (bases of bases first), jsonargparse's own merge of several ``--config``: mappings
merge key by key, a list (``callbacks``, ``benchmarks``) replaces the base's list.

Left out on purpose: anything that is not argument wiring (it lives in ``pebr_lit``/``callbacks``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # DataLoader workers fork after tokenising
# GRPO modules optimise manually; Lightning then warns that step checkpoints hold the state after the
# optimizer step. That is the state a resumed stage needs (the step's rollout batch counts as done).
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")

# Imported so that short class names resolve in configs and --help lists them.
from lightning.pytorch import LightningDataModule, LightningModule  # noqa: E402
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI  # noqa: E402

import pebr_lit.data.prompt_datamodule  # noqa: E402,F401
import pebr_lit.data.sft_datamodule  # noqa: E402,F401
import pebr_lit.data.tiered_datamodule  # noqa: E402,F401
import pebr_lit.eval.benchmarks  # noqa: E402,F401
import pebr_lit.eval.datamodule  # noqa: E402,F401
import pebr_lit.modules.evaluation  # noqa: E402,F401
import pebr_lit.modules.perception  # noqa: E402,F401
import pebr_lit.modules.reasoning  # noqa: E402,F401
import pebr_lit.modules.sft  # noqa: E402,F401
from callbacks.run_lock import RunDirLock  # noqa: E402
from pebr_lit.ckpt.cli_checks import (  # noqa: E402
    early_checks,
    install_atomic_io,
    resolve_ckpt_path,
    short_errors,
    stopped_by_sigterm,
)
from pebr_lit.data.preflight import missing_data_paths  # noqa: E402

OVERLAY_OF = "# overlay-of:"
_RUN_LINE = re.compile(r"^# Run: .*?cli\.py\s+(fit|validate|test|predict)\b")
CONFIG_FLAGS = ("-c", "--config")


def config_chain(path: str, seen: tuple[str, ...] = ()) -> list[str]:
    """``path`` preceded by its bases (``# overlay-of:`` lines, each resolved from ``path``'s folder), bases first.

    Several ``# overlay-of:`` lines load in order; a base reached twice (a diamond) is loaded once, where it first
    appears.
    """
    if path in seen:
        raise ValueError(f"{path}: '{OVERLAY_OF}' lines form a cycle ({' -> '.join((*seen, path))}); remove one.")
    if not os.path.isfile(path):
        return [path]  # not a file (a YAML string, a typo): jsonargparse reports it
    chain: list[str] = []
    for line in Path(path).read_text().splitlines():
        if line.startswith(OVERLAY_OF):
            base = os.path.normpath(os.path.join(os.path.dirname(path), line[len(OVERLAY_OF) :].strip()))
            if not os.path.isfile(base):
                raise ValueError(
                    f"{path}: '{line.strip()}' names {base}, which does not exist; "
                    "give the base's path relative to the overlay's folder."
                )
            # Two bases may share a base of their own (a stage base and a hardware base over one model base):
            # it loads once, first, so that neither base's values are reset by loading it again after them.
            chain += [p for p in config_chain(base, (*seen, path)) if p not in chain]
    return [*chain, path]


def expand_overlays(args: list[str]) -> list[str]:
    """``args`` with each ``--config overlay.yaml`` preceded by ``--config <base>`` for every base not loaded yet.

    An overlay of comments only (the same run as its bases, e.g. under another name) is replaced by its bases.
    """
    out: list[str] = []
    loaded: set[str] = set()  # real paths of the configs already given, so a base loads once
    i = 0
    while i < len(args):
        flag, eq, value = args[i].partition("=")
        if flag not in CONFIG_FLAGS or (not eq and i + 1 == len(args)):
            out.append(args[i])
            i += 1
            continue
        if not eq:  # "--config path" rather than "--config=path"
            i += 1
            value = args[i]
        i += 1
        chain = config_chain(value)
        out += [a for base in chain[:-1] if os.path.realpath(base) not in loaded for a in (flag, base)]
        loaded.update(os.path.realpath(p) for p in chain)
        if len(chain) == 1 or not _only_comments(value):
            out += [flag, value]
    return out


def _only_comments(path: str) -> bool:
    """True for an overlay that sets nothing beyond its bases (comments only), which jsonargparse would refuse."""
    return yaml.safe_load(Path(path).read_text()) is None


class PeBRCLI(LightningCLI):
    """LightningCLI with pebr-lit's defaults: any module/datamodule subclass, seeded runs, the processor link.

    ``model.processor -> data.init_args.processor`` hands the policy's processor to the DataModule when both
    are built (the other values a DataModule reads off its module are ``pebr_lit.data.contracts``).

    A logger with a fixed ``version`` (the demo configs log fit runs to ``runs/demo/<stage>``) gets
    the subcommand appended for ``validate``/``test``/``predict``, so evaluating with a stage's own
    config writes ``runs/demo/<stage>/test/`` instead of deleting the training logs.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # The DataModule tokenises with the policy's processor, which exists once the model is built; a link
        # applied on instantiation builds the model first. Ignored for a pair without these attributes.
        parser.link_arguments("model.processor", "data.init_args.processor", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: object) -> None:
        """Expands overlays (``# overlay-of:``) into ``--config base --config overlay``, then parses."""
        if args is None or isinstance(args, (list, tuple)):
            try:
                expanded = expand_overlays(list(sys.argv[1:] if args is None else args))
            except ValueError as e:
                parser.error(str(e))
            if args is None:  # the command line: parsed as given, without LightningCLI's args-vs-argv warning
                self.config = parser.parse_args(expanded)
                return
            args = expanded
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Checks init_from, ckpt_path and CLIP directories first (before Lightning reads ckpt_path, before any model
        is built); a bad one prints as one line."""
        subcommand = self.config.get("subcommand")
        with short_errors():
            early_checks(self.config[subcommand] if subcommand else self.config)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        missing = missing_data_paths(config.get("data"), self.subcommand)
        if missing:  # one line before any weights are loaded, not a traceback after them
            print(f"error: {missing}", file=sys.stderr)
            raise SystemExit(2)
        if self.subcommand in (None, "fit"):
            return
        loggers = self.config[self.subcommand].trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = getattr(logger, "init_args", None)
            version = getattr(init_args, "version", None)
            if isinstance(version, str):
                init_args.version = f"{version}/{self.subcommand}" if version else self.subcommand

    def instantiate_classes(self) -> None:
        """Builds the classes (a ``ConfigError`` raised inside prints as one line) and gives checkpoints atomic IO."""
        with short_errors():
            super().instantiate_classes()
        install_atomic_io(self.trainer)

    def _run_subcommand(self, subcommand: str) -> None:
        """Locks a fit's run directory, resolves ``ckpt_path=last`` to the newest good checkpoint, then runs; a
        ``ConfigError`` (a damaged checkpoint, a locked directory) prints as one line;
        a run SIGTERM stopped exits 143."""
        locks = [cb for cb in self.trainer.callbacks if isinstance(cb, RunDirLock)] if subcommand == "fit" else []
        with short_errors():
            try:
                for lock in locks:  # refuse a second fit into a run directory before anything is read or written
                    lock.acquire(self.trainer)
                node = self.config_init[subcommand]
                if "ckpt_path" in node:
                    node["ckpt_path"] = resolve_ckpt_path(self.trainer, node["ckpt_path"])
            except BaseException:
                for lock in locks:
                    lock.release()
                raise
            with stopped_by_sigterm(self.trainer):
                super()._run_subcommand(subcommand)


def main(args: list[str] | None = None, run: bool = True) -> PeBRCLI:
    """Entry point; ``args``/``run`` let tests drive the CLI in-process."""
    return PeBRCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [RunDirLock()]},  # every fit holds its run directory (callbacks.run_lock)
        parser_kwargs={"parser_mode": "omegaconf"},
        args=args,
        run=run,
    )


def run_subcommand(path: str | Path) -> str:
    """The subcommand of a config header's ``# Run: python cli.py <sub>`` line; ``fit`` when none names one."""
    for line in Path(path).read_text().splitlines():
        match = _RUN_LINE.match(line)
        if match:
            return match.group(1)
    return "fit"


def printed_config(path: str | Path, subcommand: str | None = None) -> dict[str, Any]:
    """The whole config ``cli.py <subcommand> --config <path> --print_config`` resolves (overlays expanded, every
    default filled in, nothing built), as a dict; ``subcommand`` defaults to the file header's.

    Raises ``ValueError`` with the CLI's output when it printed no config (the file does not parse).
    """
    sub = subcommand or run_subcommand(path)
    out = io.StringIO()
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when given args and a command line both
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([sub, "--config", str(path), "--print_config"], run=True)
    finally:
        sys.argv = argv
    printed = out.getvalue()
    if "class_path" not in printed:
        raise ValueError(f"{path}: cli.py {sub} --print_config printed no config; fix the config:\n{printed[-2000:]}")
    return yaml.safe_load(printed)


def console_main() -> int:
    """The installed ``pebr-lit`` command: ``python cli.py`` with a process exit status.

    ``main`` returns the CLI object, which ``sys.exit`` would print and turn into status 1; a bad
    argument still exits 2 (argparse's ``SystemExit``) and a failing run still raises.
    """
    main()
    return 0


if __name__ == "__main__":
    main()
