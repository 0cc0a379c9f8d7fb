"""The two timed runs behind ``benchmarks/vs_trl.py``: pebr-lit's stage-2 module and TRL's ``GRPOTrainer``.

Each run trains the same Hugging Face checkpoint on the same records for ``warmup + steps`` rollout batches
of ``prompts x group`` responses with the same sampling, KL weight, learning rate, clipping and reward
(``shared_reward``: pebr-lit's ``ReasoningReward``, accuracy 0.9 + format 0.1, called as a plain function by
both), and returns one figure dict: the wall time between consecutive step ends (so data loading,
tokenisation, image processing and logging count in both), tokens generated and mean reward per step, and
the process's peak RSS. Every parameter is trained in both (TRL trains the whole model; pebr-lit's vision
freezing is turned off to match). Run one per process: ``vs_trl.py`` starts them.

Left out on purpose: alternating, medians and ratios (``vs_trl.py``), GPUs (``--accelerator`` is the CPU
only here), LoRA, and TRL's vLLM generation.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    """What both runs share."""

    model: str  # Hugging Face checkpoint directory
    data: str  # record file (JSONL with images)
    prompts: int  # prompts per rollout batch (B)
    group: int  # responses per prompt (G)
    max_new_tokens: int
    steps: int  # timed steps
    warmup: int  # untimed steps first
    kl_coef: float = 0.01
    lr: float = 1e-5
    seed: int = 0


def shared_reward(texts: list[str], answers: list[str]) -> list[float]:
    """Accuracy (0.9) + format (0.1) of each response: the stage-2 reward, identical for both runs."""
    from pebr_lit.rewards.stages import ReasoningReward

    return ReasoningReward()(texts, answers=answers)["total"].tolist()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def figures(ends: list[float], start: float, tokens: list[float], rewards: list[float], warmup: int) -> dict:
    """Per-step seconds (end to end; the first from the run's start), tokens and rewards, timed steps only."""
    edges = [start, *ends]
    seconds = [b - a for a, b in zip(edges, edges[1:])]
    return {
        "step_seconds": seconds[warmup:],
        "tokens_per_step": tokens[warmup:],
        "reward_per_step": rewards,  # all steps, warm-up included: the learning curve
        "peak_rss_mib": peak_rss_mib(),
    }


#: pebr-lit's decoding before issue #17 made the fast paths the defaults (``vs_trl.py --pebr-plain``).
PLAIN_DECODING = {"attn_implementation": "sdpa", "kv_cache": "dynamic"}


def run_pebr(spec: RunSpec, plain: bool = False) -> dict[str, Any]:
    """``ReasoningGRPO`` under a Lightning ``Trainer``: pebr-lit's default policy settings, or ``PLAIN_DECODING``."""
    import lightning as L
    import torch

    from benchmarks.grpo_step import bare_trainer
    from callbacks.reference import ReferencePolicy
    from pebr_lit.data.prompt_datamodule import PromptDataModule
    from pebr_lit.grpo.losses import GRPOLoss
    from pebr_lit.modules.reasoning import ReasoningGRPO
    from pebr_lit.policy.settings import SamplingSettings
    from pebr_lit.policy.wrapper import PolicyWrapper
    from pebr_lit.rewards.stages import ReasoningReward

    L.seed_everything(spec.seed, verbose=False)
    decoding = PLAIN_DECODING if plain else {}
    policy = PolicyWrapper(spec.model, dtype="float32", freeze_vision=False, freeze_projector=False, **decoding)
    n = spec.prompts * spec.group
    module = ReasoningGRPO(
        policy,
        reward=ReasoningReward(),
        loss=GRPOLoss(kl_coef=spec.kl_coef),
        sampling=SamplingSettings(
            num_samples=spec.group, temperature=1.0, top_p=1.0, max_new_tokens=spec.max_new_tokens
        ),
        optimizer=lambda params: torch.optim.AdamW(params, lr=spec.lr),
        mini_batches=1,
        micro_batch_size=n,
        gradient_clip_val=1.0,
    )
    tokens: list[float] = []
    rewards: list[float] = []
    generate, score = policy.generate, module.score

    def counted_generate(*args: Any, **kwargs: Any) -> Any:
        rollout = generate(*args, **kwargs)
        tokens.append(float(rollout.response_mask.sum()))
        return rollout

    def noted_score(*args: Any, **kwargs: Any) -> Any:
        out = score(*args, **kwargs)
        rewards.append(float(out[0]["total"].mean()))
        return out

    policy.generate, module.score = counted_generate, noted_score
    ends: list[float] = []

    class StepEnds(L.Callback):
        def on_train_batch_end(self, *args: Any) -> None:
            ends.append(time.perf_counter())

    data = PromptDataModule(train_files=[spec.data], batch_size=spec.prompts, epochs=1000.0, seed=spec.seed)
    trainer = bare_trainer("cpu", "32-true", spec.warmup + spec.steps, [StepEnds(), ReferencePolicy()])
    start = time.perf_counter()
    trainer.fit(module, data)
    return figures(ends, start, tokens, rewards, spec.warmup)


def trl_dataset(spec: RunSpec) -> Any:
    """The records as TRL's conversational VLM rows: pebr-lit's own user turn, the image, the answer."""
    from datasets import Dataset

    from pebr_lit.data.collate import user_messages
    from pebr_lit.data.records import load_records
    from pebr_lit.format.prompts import InstructionPrompt

    prompt = InstructionPrompt()
    rows = []
    for r in load_records(spec.data):
        images = r.load_images()
        if len(images) != 1:
            raise ValueError(f"{r.source}: images has {len(images)} entries; this benchmark feeds TRL one per row.")
        messages = user_messages(prompt, r.problem, 1, r.source)
        rows.append({"prompt": messages, "image": images[0], "answer": r.answer})
    return Dataset.from_list(rows)


def run_trl(spec: RunSpec, out_dir: str) -> dict[str, Any]:
    """TRL's ``GRPOTrainer``: one generation of B x G per optimizer step, same sampling and loss weights."""
    from transformers import AutoProcessor, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from pebr_lit.policy.wrapper import PolicyWrapper

    n = spec.prompts * spec.group
    # Left padding as TRL loads a processor itself: its forward pass re-runs the processor on the prompts and
    # aligns the image-token types with left-padded prompt ids (right padding breaks Qwen2.5-VL's rope index).
    processor = AutoProcessor.from_pretrained(spec.model, padding_side="left", truncation_side="left")
    # The same tokens may never be sampled as in pebr-lit (image placeholders and the checkpoint's own list).
    suppress = PolicyWrapper(spec.model, dtype="float32").suppressed_token_ids
    config = GRPOConfig(
        output_dir=out_dir,
        use_cpu=True,
        seed=spec.seed,
        max_steps=spec.warmup + spec.steps,
        per_device_train_batch_size=n,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_generations=spec.group,
        max_completion_length=spec.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        repetition_penalty=1.0,
        generation_kwargs={"suppress_tokens": suppress},
        beta=spec.kl_coef,
        num_iterations=1,
        loss_type="dapo",  # token mean over the batch, as pebr-lit's GRPOLoss default
        scale_rewards="group",
        learning_rate=spec.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.01,  # torch AdamW's default, which pebr-lit uses
        max_grad_norm=1.0,
        model_init_kwargs={"dtype": "float32"},
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        bf16=False,
    )
    ends: list[float] = []
    tokens: list[float] = []
    rewards: list[float] = []

    class Figures(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            ends.append(time.perf_counter())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if logs and "reward" in logs and "completions/mean_length" in logs:
                tokens.append(float(logs["completions/mean_length"]) * n)
                rewards.append(float(logs["reward"]))

    def accuracy_format(prompts: list, completions: list, answer: list[str], **kwargs: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return shared_reward(texts, list(answer))

    trainer = GRPOTrainer(
        model=spec.model,  # a path: the reference model (beta > 0) is reloaded from it
        reward_funcs=accuracy_format,
        args=config,
        train_dataset=trl_dataset(spec),
        processing_class=processor,
        callbacks=[Figures()],
    )
    start = time.perf_counter()
    trainer.train()
    return figures(ends, start, tokens, rewards, spec.warmup)
