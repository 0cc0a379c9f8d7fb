"""The LM head gets a contiguous input: CPU ``linear`` then folds rows into one ``mm`` instead of a batched ``bmm``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from pebr_lit.data.collate import encode_prompts
from pebr_lit.data.records import load_records
from pebr_lit.policy.head_input import contiguous_head_input
from pebr_lit.policy.settings import LoraSettings
from pebr_lit.policy.wrapper import PolicyWrapper


class Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def test_a_sliced_input_takes_the_batched_route_that_the_hook_avoids():
    # Frozen, as under LoRA and in every no-grad pass (a weight that needs its gradient makes matmul fold anyway).
    head = torch.nn.Linear(8, 32, bias=False).to(torch.bfloat16).requires_grad_(False)
    hidden = torch.randn(3, 10, 8, dtype=torch.bfloat16)[:, -4:, :]  # [3, 4, 8], not contiguous, as HF slices it
    with Ops() as bare:
        want = F.linear(hidden, head.weight)
    assert any("bmm" in n for n in bare.names)  # what the hook exists for: [3, 8, 32] expanded for bmm
    holder = torch.nn.Module()
    holder.lm_head = head
    holder.get_output_embeddings = lambda: head
    contiguous_head_input(holder)
    with Ops() as hooked:
        got = head(hidden)
    assert not any("bmm" in n for n in hooked.names) and any(n.startswith("aten.mm") for n in hooked.names)
    torch.testing.assert_close(got, want)


def test_the_policy_scores_several_rows_without_a_batched_head_product(assets, world):
    # LoRA freezes the head: the case where matmul would take the batched route (a trained head folds anyway).
    policy = PolicyWrapper(str(assets["vlm"]), dtype="float32", lora=LoraSettings(r=2, alpha=4, dropout=0.0))
    records = load_records(world / "val.jsonl")[:2]
    prompts = encode_prompts(policy.processor, [r.problem for r in records], [r.load_images() for r in records])
    ids = torch.randint(16, 100, (4, 6))  # [N, R]: two responses per prompt
    with Ops() as ops, torch.no_grad():
        policy.token_logprobs(prompts, ids, torch.ones_like(ids), num_samples=2)
    assert not any("bmm" in n for n in ops.names if "baddbmm" not in n), sorted(set(ops.names))
