"""The shipped real-scale configs hold the authors' recipe, value for value (PAPER.md's digest of the paper and
of the authors' code, cythu/PeBR-R1: docs/qwen2_5vl_full_sft.yaml, examples/pebr_{sample,stage1,stage2}.yaml,
examples/reward_function/pebr_{1,2}.py).

Each file is read as the CLI composes it (bases first, defaults filled in, nothing built), so a value a base
sets, a default the code holds and a value a file overrides are all checked where they end up. The multi-GPU
files (no card suffix) must match the authors in every value; the single-GPU cards may change only what fits
the hardware (batch sizes kept in the authors' ratios, LoRA learning rates), and that is checked too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import main, printed_config

ROOT = Path(__file__).resolve().parents[2]
SIZES = ("qwen2_5_vl_7b", "qwen2_5_vl_3b")
STAGES = ("sft", "sample", "stage1", "stage2")
CARDS = ("", "_lora_80gb", "_qlora_24gb")
FILES = [ROOT / "configs" / size / f"{stage}{card}.yaml" for size in SIZES for stage in STAGES for card in CARDS]
MODEL = {"qwen2_5_vl_7b": "Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl_3b": "Qwen/Qwen2.5-VL-3B-Instruct"}


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


@pytest.fixture(scope="module")
def configs() -> dict[Path, dict[str, Any]]:
    return {p: printed_config(p) for p in FILES}


def test_every_stage_ships_for_every_card_and_size():
    launched = {p for size in SIZES for p in (ROOT / "configs" / size).glob("*.yaml") if not p.name.startswith("_")}
    assert sorted(map(_id, launched)) == sorted(map(_id, FILES))


def _get(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        node = node[key]
    return node


def _callback(cfg: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [c for c in cfg["trainer"]["callbacks"] or [] if c["class_path"].endswith(name)]
    return found[0]["init_args"] if found else None


def _check(cfg: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (expected, found)} for every key whose value differs."""
    wrong = {}
    for key, want in expected.items():
        try:
            got = _get(cfg, key)
        except (KeyError, TypeError):
            got = "<missing>"
        if got != want:
            wrong[key] = (want, got)
    return wrong


M = "model.init_args"
POLICY = f"{M}.policy.init_args"
D = "data.init_args"

# Every stage: the authors' seed and image budget (max_pixels 802816 = 1024 * 28 * 28; sampling 4194304).
COMMON = {"seed_everything": 1}

# Warm-up SFT: LLaMA-Factory full fine-tune, vision tower and projector frozen, lr 1e-5, cosine with 10 %
# warm-up (decaying to 0), 2 epochs, cutoff 4096 tokens.
SFT = {
    "model.class_path": "pebr_lit.modules.sft.SFTModule",
    f"{M}.optimizer.class_path": "torch.optim.AdamW",
    f"{M}.scheduler.class_path": "pebr_lit.modules.schedules.WarmupCosine",
    f"{M}.scheduler.init_args.warmup_fraction": 0.1,
    f"{M}.scheduler.init_args.min_ratio": 0.0,
    "trainer.max_epochs": 2,
    f"{D}.max_length": 4096,
    f"{POLICY}.max_pixels": 802816,
}
SFT_FULL = {f"{M}.optimizer.init_args.lr": 1.0e-5, f"{POLICY}.freeze_vision": True, f"{POLICY}.freeze_projector": True}

# Sampling: n = 8 at temperature 1.2, top-p 0.99, 2048 new tokens, images up to 4194304 pixels, graded by the
# authors' accuracy rule (their pebr_sample.py) with mathruler alone, prompted with their template.
SAMPLE = {
    "model.class_path": "pebr_lit.modules.sft.SFTModule",
    f"{M}.eval_sampling.num_samples": 8,
    f"{M}.eval_sampling.temperature": 1.2,
    f"{M}.eval_sampling.top_p": 0.99,
    f"{M}.eval_sampling.max_new_tokens": 2048,
    f"{M}.eval_sampling.do_sample": True,
    f"{POLICY}.max_pixels": 4194304,
    f"{M}.rules.class_path": "pebr_lit.rewards.rules.AuthorsRules",
    f"{M}.grader": None,  # the rules' own: mathruler_grade
    f"{D}.prompt.class_path": "pebr_lit.format.prompts.TemplatePrompt",
}

# GRPO, both stages: group 8, T 1.2, top-p 0.99 (validation T 0.5, one sample), prompt and response up to
# 2048 tokens; clip 0.2 / 0.3, dual-clip 3, k3 KL 0.01 to the stage-start policy as a loss term, token mean
# per micro-batch of 4, group mean/std advantages; AdamW, weight decay 0.01, constant lr, grad-norm clip 1.0;
# log-probs at the sampling temperature; no online filter; the authors' template and rules.
GRPO = {
    f"{M}.sampling.num_samples": 8,
    f"{M}.sampling.temperature": 1.2,
    f"{M}.sampling.top_p": 0.99,
    f"{M}.sampling.max_new_tokens": 2048,
    f"{M}.sampling.do_sample": True,
    f"{M}.eval_sampling.num_samples": 1,
    f"{M}.eval_sampling.temperature": 0.5,
    f"{D}.max_prompt_length": 2048,
    f"{POLICY}.max_pixels": 802816,
    f"{M}.loss.init_args.policy_loss.class_path": "pebr_lit.grpo.losses.ClippedSurrogate",
    f"{M}.loss.init_args.policy_loss.init_args.eps_low": 0.2,
    f"{M}.loss.init_args.policy_loss.init_args.eps_high": 0.3,
    f"{M}.loss.init_args.policy_loss.init_args.dual_clip_c": 3.0,
    f"{M}.loss.init_args.kl.class_path": "pebr_lit.grpo.kl.K3",
    f"{M}.loss.init_args.aggregation.class_path": "pebr_lit.grpo.aggregation.MicroBatchTokenMean",
    f"{M}.loss.init_args.entropy_coef": 0.0,
    f"{M}.advantage.class_path": "pebr_lit.grpo.advantages.GroupMeanStd",
    f"{M}.micro_batch_size": 4,
    f"{M}.optimizer.class_path": "torch.optim.AdamW",
    f"{M}.optimizer.init_args.weight_decay": 0.01,
    f"{M}.scheduler": None,
    f"{M}.gradient_clip_val": 1.0,
    f"{M}.online_filter": None,
    f"{M}.mask_zero_variance": False,
    f"{M}.logprob_temperature": None,  # = sampling.temperature
    f"{D}.prompt.class_path": "pebr_lit.format.prompts.TemplatePrompt",
}
# Full fine-tune (the authors' 8-GPU setting): lr 1e-6 and the vision tower trained.
GRPO_FULL = {
    f"{M}.optimizer.init_args.lr": 1.0e-6,
    f"{POLICY}.freeze_vision": False,
    f"{POLICY}.freeze_projector": False,
}

# Stage 1: 0.4 clip + 0.4 keyword + 0.1 format + 0.1 length (target 512), accuracy not rewarded, the authors'
# rules; FG-CLIP large at 336 px with 248-token captions on the long-text path; 1 epoch over Easy.
STAGE1 = {
    "model.class_path": "pebr_lit.modules.perception.PerceptionGRPO",
    f"{M}.reward.class_path": "pebr_lit.rewards.stages.PerceptionReward",
    f"{M}.reward.init_args.clip": 0.4,
    f"{M}.reward.init_args.keyword": 0.4,
    f"{M}.reward.init_args.format": 0.1,
    f"{M}.reward.init_args.length": 0.1,
    f"{M}.reward.init_args.accuracy": 0.0,
    f"{M}.reward.init_args.clip_threshold": 0.4,
    f"{M}.reward.init_args.target_length": 512,
    f"{M}.reward.init_args.rules.class_path": "pebr_lit.rewards.rules.AuthorsRules",
    f"{M}.reward.init_args.grader": None,
    f"{M}.clip_scorer.class_path": "pebr_lit.clip.fgclip.FGCLIPScorer",
    f"{M}.clip_scorer.init_args.image_size": 336,
    f"{M}.clip_scorer.init_args.max_text_tokens": 248,
    f"{M}.clip_scorer.init_args.walk_short_pos": False,
    f"{M}.clip_scorer.init_args.trust_remote_code": True,
    f"{D}.epochs": 1.0,
}
# Stage 2: 0.9 accuracy + 0.1 format by the authors' rules, 2 epochs over Medium.
STAGE2 = {
    "model.class_path": "pebr_lit.modules.reasoning.ReasoningGRPO",
    f"{M}.reward.class_path": "pebr_lit.rewards.stages.ReasoningReward",
    f"{M}.reward.init_args.accuracy": 0.9,
    f"{M}.reward.init_args.format": 0.1,
    f"{M}.reward.init_args.rules.class_path": "pebr_lit.rewards.rules.AuthorsRules",
    f"{M}.reward.init_args.grader": None,
    f"{D}.epochs": 2.0,
}
# Prompts per rollout batch and per update (stage 1: 560 / 112, stage 2: 512 / 128): the cards keep the ratio.
BATCHES = {"stage1": (560, 112), "stage2": (512, 128)}

# fp32 master weights and Adam state, bf16 compute, fp32 reduce (the authors' FSDP workers).
FSDP = {
    "trainer.devices": 8,
    "trainer.precision": "32-true",
    "trainer.strategy.class_path": "pebr_lit.policy.fsdp.FSDP2Strategy",
    "trainer.strategy.init_args.sharding.param_dtype": "bfloat16",
    "trainer.strategy.init_args.sharding.reduce_dtype": "float32",
    f"{POLICY}.dtype": "float32",
}
# Single GPU: frozen bf16 (or 4-bit) base, fp32 LoRA adapters, bf16 autocast.
CARD = {"trainer.devices": 1, "trainer.precision": "bf16-mixed", f"{POLICY}.dtype": "bfloat16"}


def _stage(path: Path) -> str:
    return path.stem.split("_")[0]


def _card(path: Path) -> str:
    return path.stem[len(_stage(path)) :]


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_the_authors_values(configs, path):
    cfg, stage, card = configs[path], _stage(path), _card(path)
    expected = {**COMMON, f"{POLICY}.model_name_or_path": MODEL[path.parent.name]}
    expected.update({"sft": SFT, "sample": SAMPLE, "stage1": {**GRPO, **STAGE1}, "stage2": {**GRPO, **STAGE2}}[stage])
    if card == "" and stage in ("sft", "stage1", "stage2"):
        expected.update({**FSDP, **(SFT_FULL if stage == "sft" else GRPO_FULL)})
    if card:
        expected.update(CARD)
    if card == "_qlora_24gb":
        expected[f"{POLICY}.quantization.quant_type"] = "nf4"
        expected[f"{POLICY}.quantization.compute_dtype"] = "bfloat16"
    if card:
        expected[f"{POLICY}.lora.language_model_only"] = True
    assert _check(cfg, expected) == {}


@pytest.mark.parametrize("path", [p for p in FILES if _stage(p) == "sft"], ids=lambda p: _id(p))
def test_sft_keeps_128_examples_per_step(configs, path):
    # docs/qwen2_5vl_full_sft.yaml: 4 per device x 4 accumulated x 8 GPUs.
    cfg = configs[path]
    t = cfg["trainer"]
    per_step = cfg["data"]["init_args"]["batch_size"] * t["accumulate_grad_batches"] * t["devices"] * t["num_nodes"]
    assert per_step == 128


@pytest.mark.parametrize("path", [p for p in FILES if _stage(p).startswith("stage")], ids=lambda p: _id(p))
def test_grpo_batches_are_the_authors_or_in_their_ratio(configs, path):
    cfg, (rollout, update) = configs[path], BATCHES[_stage(path)]
    batch, minis = cfg["data"]["init_args"]["batch_size"], cfg["model"]["init_args"]["mini_batches"]
    assert minis == rollout // update, "updates per rollout batch"
    assert batch % minis == 0, "every update gets the same number of prompts"
    if _card(path) == "":
        assert batch == rollout
        assert batch % (cfg["trainer"]["devices"] * cfg["trainer"]["num_nodes"]) == 0


@pytest.mark.parametrize("path", [p for p in FILES if _stage(p).startswith("stage")], ids=lambda p: _id(p))
def test_grpo_keeps_a_fixed_kl_to_the_stage_start_policy_and_the_length_in_the_reward(configs, path):
    cfg = configs[path]
    reference, kl = _callback(cfg, "ReferencePolicy"), _callback(cfg, "KLController")
    assert reference is not None and reference["sync_every"] is None and reference["ema_decay"] is None
    assert kl is not None and kl["coef"] == 0.01 and kl["target"] is None  # fixed coefficient, no adaptive target
    assert _callback(cfg, "LengthPenalty") is None  # stage 1's length term is the reward's own (weight 0.1)


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_each_stage_starts_from_the_one_before_on_the_same_card_and_model(configs, path):
    cfg, stage, card = configs[path], _stage(path), _card(path)
    run = f"runs/{path.parent.name}"
    previous = {"sft": None, "sample": "sft", "stage1": "sft", "stage2": "stage1"}[stage]
    init_from = cfg["model"]["init_args"]["init_from"]
    assert init_from == (f"{run}/{previous}{card}/checkpoints/last.ckpt" if previous else None)
    if stage.startswith("stage"):
        tier = {"stage1": "easy", "stage2": "medium"}[stage]
        assert cfg["data"]["init_args"]["train_files"] == [f"{run}/tiers{card}/{tier}.jsonl"]
    if stage == "sample":  # the tiers command reads this file
        assert _callback(cfg, "SamplingWriter")["output_path"] == f"{run}/{path.stem}/samples.jsonl"
    else:  # checkpoints land in <save_dir>/<name>/checkpoints, where the next stage's init_from looks
        logger = cfg["trainer"]["logger"]["init_args"]
        assert (logger["save_dir"], logger["name"], logger["version"]) == (run, path.stem, "")
        assert cfg["trainer"]["default_root_dir"] == run


def test_the_recipe_pages_snippet_parses_over_a_stage_config(tmp_path, capsys):
    # docs/recipe.md's "The authors' choices in any config" block, laid over the demo's stage 1.
    block = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "recipe.md").read_text(), re.S)[0]
    assert "AuthorsRules" in block and "TemplatePrompt" in block
    snippet = tmp_path / "snippet.yaml"
    snippet.write_text(block)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs/demo/stage1.yaml"), "--config", str(snippet), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["reward"]["init_args"]["rules"]["class_path"].endswith("AuthorsRules")
    assert printed["data"]["init_args"]["prompt"]["class_path"].endswith("TemplatePrompt")
