"""DataModule <-> module contracts: the pebr-lit modules satisfy ``pebr_lit.data.contracts``, a module that
does not is refused with an error naming what it lacks, and the CLI links the processor at instantiation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cli import main
from pebr_lit.data.contracts import BenchmarkSource, ProcessorSource, RolloutProgress, TierDefaults
from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.data.sft_datamodule import SFTDataModule
from pebr_lit.data.tiered_datamodule import TieredDataModule
from pebr_lit.eval.datamodule import EvalDataModule
from pebr_lit.modules.evaluation import EvalModule
from pebr_lit.modules.perception import PerceptionGRPO
from pebr_lit.modules.reasoning import ReasoningGRPO
from pebr_lit.modules.sft import SFTModule

SFT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "demo" / "sft.yaml"


def _attach(dm, module):
    dm.trainer = SimpleNamespace(lightning_module=module, global_rank=0, world_size=1)
    return dm


def test_pebr_lit_modules_satisfy_the_contracts(policy):
    sft, stage2 = SFTModule(policy), ReasoningGRPO(policy)
    assert isinstance(sft, ProcessorSource) and sft.processor is policy.processor
    assert isinstance(stage2, ProcessorSource) and stage2.processor is policy.processor
    assert isinstance(stage2, RolloutProgress) and stage2.rollout_batches == 0
    assert isinstance(stage2, TierDefaults) and list(stage2.default_tiers) == ["medium"]
    assert list(PerceptionGRPO.default_tiers) == ["easy"]
    # EvalModule needs benchmark files to build; its members are checked on the class.
    assert isinstance(EvalModule.processor, property) and callable(EvalModule.answered)
    assert "benchmarks" in EvalModule.__init__.__annotations__
    assert not isinstance(sft, RolloutProgress) and not isinstance(sft, TierDefaults)


def test_a_module_without_the_contract_is_refused_by_name(world, policy):
    sft_data = SFTDataModule(val_files=[str(world / "val.jsonl")])
    with pytest.raises(RuntimeError, match=r"SFTDataModule is attached to no LightningModule.*ProcessorSource"):
        sft_data.setup("validate")
    with pytest.raises(TypeError, match=r"the module SimpleNamespace lacks processor \(ProcessorSource"):
        _attach(SFTDataModule(val_files=[str(world / "val.jsonl")]), SimpleNamespace()).setup("validate")

    prompts = _attach(PromptDataModule(train_files=[str(world / "train.jsonl")]), SimpleNamespace(processor=None))
    prompts.processor = policy.processor
    prompts.setup("fit")
    with pytest.raises(TypeError, match=r"lacks rollout_batches \(RolloutProgress.*GRPO module"):
        prompts.train_dataloader()

    tiered = _attach(TieredDataModule(tiers_dir=str(world)), SimpleNamespace(processor=policy.processor))
    with pytest.raises(TypeError, match=r"lacks default_tiers \(TierDefaults.*data\.init_args\.tiers"):
        tiered.setup("fit")

    evaluation = _attach(EvalDataModule(), SimpleNamespace(processor=policy.processor, benchmarks=[object()]))
    with pytest.raises(TypeError, match=r"lacks answered \(BenchmarkSource.*EvalModule"):
        evaluation.setup("test")
    assert not isinstance(SimpleNamespace(benchmarks=[]), BenchmarkSource)


def test_cli_links_the_policy_processor_into_the_datamodule(assets, world):
    cli = main(
        [
            "--config",
            str(SFT_CONFIG),
            f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
            f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
            "--data.init_args.val_files=null",  # the demo's does not exist here: cli.py would refuse it up front
            "--trainer.logger=false",
        ],
        run=False,
    )
    assert cli.datamodule.trainer is None  # set at instantiation, before any Trainer attaches the two
    assert cli.datamodule.processor is cli.model.policy.processor
