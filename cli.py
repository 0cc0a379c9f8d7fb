"""pebr-lit command line: ``python cli.py {fit,validate,test,predict} --config configs/....yaml``.

A ``LightningCLI`` over every pebr-lit LightningModule and DataModule (chosen by ``class_path`` in
the config). Stage hand-over is ``model.init_args.init_from: <previous stage>.ckpt`` (weights only);
resuming an interrupted stage is ``--ckpt_path <ckpt>`` (weights, optimizer, step, data position).
``--print_config`` prints the full resolved config of any command.

Left out on purpose: anything that is not argument wiring (it lives in ``pebr_lit``/``callbacks``).
"""

from __future__ import annotations

import os
import warnings

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

    def before_instantiate_classes(self) -> None:
        if self.subcommand in (None, "fit"):
            return
        loggers = self.config[self.subcommand].trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = getattr(logger, "init_args", None)
            version = getattr(init_args, "version", None)
            if isinstance(version, str):
                init_args.version = f"{version}/{self.subcommand}" if version else self.subcommand


def main(args: list[str] | None = None, run: bool = True) -> PeBRCLI:
    """Entry point; ``args``/``run`` let tests drive the CLI in-process."""
    return PeBRCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"parser_mode": "omegaconf"},
        args=args,
        run=run,
    )


def console_main() -> int:
    """The installed ``pebr-lit`` command: ``python cli.py`` with a process exit status.

    ``main`` returns the CLI object, which ``sys.exit`` would print and turn into status 1; a bad
    argument still exits 2 (argparse's ``SystemExit``) and a failing run still raises.
    """
    main()
    return 0


if __name__ == "__main__":
    main()
