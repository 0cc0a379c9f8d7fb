"""Configuration errors share one shape: ``<Class>.<field>=<value>: problem. What to do.``"""

import re
from collections.abc import Callable

import pytest
import torch

from callbacks.kl_control import KLController
from callbacks.length_penalty import LengthPenalty
from callbacks.reference import ReferencePolicy
from pebr_lit.clip.fgclip import FGCLIPScorer
from pebr_lit.data.sft_datamodule import SFTDataModule
from pebr_lit.data.tiered_datamodule import TieredDataModule
from pebr_lit.eval.benchmarks.mathverse import MathVerse
from pebr_lit.eval.datamodule import EvalDataModule
from pebr_lit.eval.judge import AnswerJudge
from pebr_lit.format.prompts import InstructionPrompt, TemplatePrompt
from pebr_lit.grpo.advantages import GroupMeanStd
from pebr_lit.grpo.kl import K3
from pebr_lit.grpo.losses import ClippedSurrogate, GRPOLoss
from pebr_lit.grpo.online_filter import OnlineFilter
from pebr_lit.modules.schedules import WarmupConstantDecay
from pebr_lit.policy.fsdp import Sharding
from pebr_lit.policy.precision import check_update_precision
from pebr_lit.policy.settings import LoraSettings, QuantizationSettings, SamplingSettings
from pebr_lit.rewards.stages import PerceptionReward
from pebr_lit.rollout.sglang import SGLangServer

# The "what to do" sentence is an instruction, so it opens with one of the verbs these messages use.
_ACTIONS = ("Use", "Set", "Give", "Add", "List", "Keep", "Name", "Turn")


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def _bf16_adamw() -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1, dtype=torch.bfloat16))], lr=1e-6)


@pytest.mark.parametrize(
    ("build", "prefix"),
    [
        (lambda: GroupMeanStd(eps=0.0), "GroupMeanStd.eps=0.0: "),
        (lambda: K3(max_value=-1.0), "K3.max_value=-1.0: "),
        (lambda: ClippedSurrogate(eps_low=1.0), "ClippedSurrogate.eps_low=1.0: "),
        (lambda: GRPOLoss(entropy_coef=-0.5), "GRPOLoss.entropy_coef=-0.5: "),
        (lambda: OnlineFilter(max_rounds=0), "OnlineFilter.max_rounds=0: "),
        (lambda: PerceptionReward(target_length=0), "PerceptionReward.target_length=0: "),
        (lambda: WarmupConstantDecay(_optimizer(), min_ratio=2.0), "WarmupConstantDecay.min_ratio=2.0: "),
        (lambda: SGLangServer("localhost:30000"), "SGLangServer.url='localhost:30000': "),
        (lambda: AnswerJudge(model="m", retries=-1), "AnswerJudge.retries=-1: "),
        (lambda: MathVerse(path="x", prompt="vision"), "MathVerse.prompt='vision': "),
        (lambda: EvalDataModule(batch_size=0), "EvalDataModule.batch_size=0: "),
        (lambda: TieredDataModule(tiers_dir="x", val_fraction=1.0), "TieredDataModule.val_fraction=1.0: "),
        (lambda: SFTDataModule(text_only="drop"), "SFTDataModule.text_only='drop': "),
        (lambda: TieredDataModule(tiers_dir="x", text_only="no"), "TieredDataModule.text_only='no': "),
        (lambda: SFTDataModule(on_bad_record="drop"), "SFTDataModule.on_bad_record='drop': "),
        (lambda: TieredDataModule(tiers_dir="x", min_image_side=-1), "TieredDataModule.min_image_side=-1: "),
        (lambda: SFTDataModule(max_image_pixels=0), "SFTDataModule.max_image_pixels=0: "),
        (
            lambda: SFTDataModule(min_image_pixels=9, max_image_pixels=4),
            "SFTDataModule.min_image_pixels=9, max_image_pixels=4: ",
        ),
        (lambda: TemplatePrompt(template="no/such.jinja"), "TemplatePrompt.template='no/such.jinja': "),
        (lambda: InstructionPrompt(image_marker=" "), "InstructionPrompt.image_marker=' ': "),
        (lambda: KLController(horizon=0), "KLController.horizon=0: "),
        (lambda: LengthPenalty(weight=-0.1), "LengthPenalty.weight=-0.1: "),
        (lambda: ReferencePolicy(sync_every=0), "ReferencePolicy.sync_every=0: "),
        (lambda: LoraSettings(r=0), "LoraSettings.r=0: "),
        (lambda: QuantizationSettings(quant_type="int4"), "QuantizationSettings.quant_type='int4': "),
        (lambda: SamplingSettings(top_p=0.0), "SamplingSettings.top_p=0.0: "),
        (lambda: SamplingSettings(do_sample=False, num_samples=4), "SamplingSettings.num_samples=4: "),
        (lambda: Sharding(param_dtype="fp8"), "Sharding.param_dtype='fp8': "),
        (lambda: FGCLIPScorer(image_size=0), "FGCLIPScorer.image_size=0: "),
        (lambda: FGCLIPScorer(max_text_tokens=2), "FGCLIPScorer.max_text_tokens=2: "),
        (lambda: FGCLIPScorer(dtype="fp8"), "FGCLIPScorer.dtype='fp8': "),
        (lambda: FGCLIPScorer(), "FGCLIPScorer.trust_remote_code=False: "),
        (lambda: FGCLIPScorer(trust_remote_code=True), "FGCLIPScorer.revision=None: "),
        (
            lambda: FGCLIPScorer("qihoo360/fg-clip2-base", trust_remote_code=True),
            "FGCLIPScorer.model_name_or_path='qihoo360/fg-clip2-base': ",
        ),
        (lambda: check_update_precision([_bf16_adamw()]), "AdamW.lr=1e-06: "),
    ],
)
def test_config_error_names_class_field_value_and_the_fix(build: Callable[[], object], prefix: str) -> None:
    with pytest.raises(ValueError) as caught:
        build()
    message = str(caught.value)
    assert message.startswith(prefix), message
    problem_and_fix = message[len(prefix) :]
    # At least two sentences: the problem, then an instruction that ends the message.
    sentences = re.split(r"(?<=[.)])\s+(?=[A-Z])", problem_and_fix)
    assert len(sentences) >= 2, message
    assert sentences[-1].startswith(_ACTIONS) and sentences[-1].endswith("."), message
