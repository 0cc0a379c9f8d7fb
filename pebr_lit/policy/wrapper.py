"""PolicyWrapper: one Hugging Face vision-language model + its processor, shared by every stage.

It loads any Qwen2-VL / Qwen2.5-VL checkpoint (local directory or hub id) through the ``transformers``
auto classes, applies freezing, LoRA or QLoRA, samples responses, scores per-token log-probs of given
responses, gives reference log-probs by disabling the adapter, and exports a merged checkpoint.

Left out on purpose: prompt encoding (``pebr_lit.data.collate``), rewards, losses and optimisation
(the LightningModules own the loop), moving weights between stages (``pebr_lit.policy.checkpoint``),
and the mechanics it delegates: adapters and merging (``policy.lora``), the log-prob pass (``policy.logprobs``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pebr_lit.errors import ConfigError
from pebr_lit.policy.attention import NAME as FOLDED_GQA
from pebr_lit.policy.head_input import contiguous_head_input
from pebr_lit.policy.inputs import mask_after_eos
from pebr_lit.policy.kv_cache import KV_CACHES, preallocated_cache, wants_preallocated
from pebr_lit.policy.logprobs import token_logprobs
from pebr_lit.policy.lora import add_lora, merged_unquantized
from pebr_lit.policy.quantization import keep_trainable_layout
from pebr_lit.policy.quantization import load_kwargs as quantization_kwargs
from pebr_lit.policy.rollout import Rollout
from pebr_lit.policy.settings import _DTYPES, LoraSettings, QuantizationSettings, SamplingSettings

log = logging.getLogger(__name__)


def _load_dtype(name: str) -> torch.dtype | str:
    if name == "auto":
        return "auto"
    if name not in _DTYPES:
        raise ValueError(f"PolicyWrapper.dtype={name!r}: unknown dtype. Use 'auto' or one of {sorted(_DTYPES)}.")
    return _DTYPES[name]


class PolicyWrapper(nn.Module):
    """A vision-language policy: HF model + processor, optionally with LoRA or QLoRA.

    Args:
        model_name_or_path: Local directory or hub id of a Qwen2-VL / Qwen2.5-VL checkpoint.
        dtype: Weight dtype: auto (as saved), float32, bfloat16 or float16. Trained weights need float32 at small
            learning rates (docs/policy.md, Precision); a frozen base (LoRA) may be bfloat16.
        allow_low_precision_updates: Train even when the optimizer's learning rate is below what the trained
            weights' dtype can represent (``pebr_lit.policy.precision``; refused at fit start otherwise).
        attn_implementation: Attention kernel: sdpa_folded_gqa (default: sdpa, but CPU decoding of grouped-query
            heads without KV copies; the library default where the model has no sdpa), sdpa, eager or
            flash_attention_2; null = library default.
        kv_cache: KV cache of generate: auto (default: preallocated on the CPU, dynamic on other devices),
            preallocated (written in place, same tokens; dynamic where the model's layers need it) or dynamic.
        freeze_vision: Keep the vision tower's weights fixed (the authors' SFT does).
        freeze_projector: Keep the vision-to-language projector (merger) fixed.
        gradient_checkpointing: Recompute activations in backward to save memory.
        lora: LoRA settings; null trains the full (unfrozen) model.
        quantization: 4-bit QLoRA settings (bitsandbytes); needs ``lora``. Trains on CUDA and on the CPU.
        min_pixels: Smallest image area the processor resizes to; null = processor default.
        max_pixels: Largest image area (authors: 1024*28*28); null = processor default.
        revision: Hub revision (branch, tag or commit) when loading by id.
        trust_remote_code: Allow custom model code shipped with the checkpoint.
        logprob_chunk_tokens: Log-prob pass from the final hidden states, the LM head and fp32 log-softmax applied
            to this many response tokens at a time (recomputed in backward), so no [rows, response, vocab] logits
            exist; null = logits of the whole micro-batch, log-softmax chunked over rows (not under FSDP).
    """

    def __init__(
        self,
        model_name_or_path: str,
        dtype: str = "auto",
        allow_low_precision_updates: bool = False,
        attn_implementation: str | None = FOLDED_GQA,
        kv_cache: str = "auto",
        freeze_vision: bool = True,
        freeze_projector: bool = True,
        gradient_checkpointing: bool = False,
        lora: LoraSettings | None = None,
        quantization: QuantizationSettings | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        logprob_chunk_tokens: int | None = None,
    ) -> None:
        super().__init__()
        if logprob_chunk_tokens is not None and logprob_chunk_tokens < 1:
            raise ValueError(
                f"PolicyWrapper.logprob_chunk_tokens={logprob_chunk_tokens!r}: must be >= 1 (e.g. 256) or null."
            )
        if quantization is not None and lora is None:
            raise ValueError(
                f"PolicyWrapper.quantization={quantization!r}, lora=None: QLoRA needs lora settings too (a 4-bit "
                "base model cannot be trained directly). Add lora settings or drop quantization."
            )
        if kv_cache not in KV_CACHES:
            raise ValueError(f"PolicyWrapper.kv_cache={kv_cache!r}: unknown cache. Use one of {KV_CACHES}.")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.source = model_name_or_path
        self.lora_settings = lora
        self.quantization = quantization
        self.kv_cache = kv_cache
        self.logprob_chunk_tokens = logprob_chunk_tokens
        self.allow_low_precision_updates = allow_low_precision_updates
        self._hub_kwargs = {
            "revision": revision,
            "trust_remote_code": trust_remote_code,
        }  # the export reloads the same base
        self._check_source(model_name_or_path)
        processor_kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if min_pixels is not None:
            processor_kwargs["min_pixels"] = min_pixels
        if max_pixels is not None:
            processor_kwargs["max_pixels"] = max_pixels
        self.processor = AutoProcessor.from_pretrained(model_name_or_path, **processor_kwargs)
        self.processor.tokenizer.padding_side = "left"  # prompts end where responses begin

        load_kwargs: dict[str, Any] = {
            "dtype": _load_dtype(dtype),
            "revision": revision,
            "trust_remote_code": trust_remote_code,
        }
        if attn_implementation:
            load_kwargs["attn_implementation"] = attn_implementation
        if quantization is not None:
            load_kwargs.update(quantization_kwargs(quantization))
        try:
            model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, **load_kwargs)
        except ValueError as error:
            if attn_implementation != FOLDED_GQA or "sdpa" not in str(error).lower():
                raise
            # The folded kernel is sdpa underneath; a model without sdpa gets the library's own choice.
            log.warning("%s: no sdpa for this model (%s); loading with the library default.", FOLDED_GQA, error)
            load_kwargs.pop("attn_implementation")
            model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, **load_kwargs)
        if quantization is not None:
            keep_trainable_layout(model)  # else training after generate breaks on the CPU (policy.quantization)
        contiguous_head_input(model)  # else CPU linear copies the head's weight per row (policy.head_input)

        for name, param in model.named_parameters():
            if (freeze_vision and _is_vision(name) and not _is_projector(name)) or (
                freeze_projector and _is_projector(name)
            ):
                param.requires_grad_(False)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False  # cache and checkpointing conflict during training forwards
            model.enable_input_require_grads()
        if lora is not None:
            model = add_lora(model, lora)
        # from_pretrained returns eval mode; Lightning keeps module modes as it finds them, so
        # dropout (LoRA's included) would silently stay off in training.
        self.model = model.train()

    # ----------------------------------------------------------------------------------------- loading
    @staticmethod
    def _check_source(path: str) -> None:
        looks_local = path.startswith((".", "/", "~")) or os.sep in path and Path(path).parent.exists()
        if looks_local and not Path(path).expanduser().is_dir():
            raise ConfigError(
                f"model_name_or_path={path!r} is not a directory. Build the tiny demo model with "
                "`python -m pebr_lit.demo.tiny --out runs/demo/assets` "
                "or point to a saved Hugging Face checkpoint."
            )

    # ------------------------------------------------------------------------------------ properties
    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def has_adapter(self) -> bool:
        return self.lora_settings is not None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def eos_token_ids(self) -> list[int]:
        """Tokens that end a response: the end-of-turn token and the model's configured eos ids."""
        ids: set[int] = set()
        for token in ("<|im_end|>", self.tokenizer.eos_token):
            if token is not None:
                tid = self.tokenizer.convert_tokens_to_ids(token)
                if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                    ids.add(tid)
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update([gen_eos] if isinstance(gen_eos, int) else (gen_eos or []))
        return sorted(ids)

    @property
    def suppressed_token_ids(self) -> list[int]:
        """Image/video placeholder and delimiter tokens, never to be sampled.

        A sampled ``<|image_pad|>`` makes the next forward with ``pixel_values`` fail (placeholder count
        != image features), which is exactly GRPO's log-prob pass after a rollout. Real checkpoints
        almost never sample them; untrained or small models do.
        """
        config = self.model.config
        names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        ids = {getattr(config, n) for n in names if isinstance(getattr(config, n, None), int)}
        configured = getattr(getattr(self.model, "generation_config", None), "suppress_tokens", None) or []
        return sorted(ids | set(configured))

    def describe(self) -> dict[str, Any]:
        """What a checkpoint needs to know to rebuild or check this policy."""
        return {
            "source": self.source,
            "lora": asdict(self.lora_settings) if self.lora_settings else None,
            "quantization": asdict(self.quantization) if self.quantization else None,
        }

    def forward(self, **inputs: Any) -> Any:
        return self.model(**inputs)

    # ------------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(self, prompts: dict[str, torch.Tensor], sampling: SamplingSettings) -> Rollout:
        """Sample ``sampling.num_samples`` responses for each left-padded prompt in ``prompts``."""
        n = sampling.num_samples
        pad_id = self.tokenizer.pad_token_id
        was_training = self.model.training
        self.model.eval()
        try:
            kwargs: dict[str, Any] = {
                "max_new_tokens": sampling.max_new_tokens,
                "do_sample": sampling.do_sample,
                "num_return_sequences": n,
                "eos_token_id": self.eos_token_ids,
                "pad_token_id": pad_id,
                # Checkpoints ship sampling defaults (Qwen2.5-VL: repetition_penalty 1.05, top_k 1) that
                # would silently reshape the distribution GRPO's ratios assume; pin plain sampling.
                "repetition_penalty": 1.0,
            }
            if sampling.do_sample:
                kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            if self.suppressed_token_ids:
                kwargs["suppress_tokens"] = self.suppressed_token_ids
            if wants_preallocated(self.kv_cache, self.device):  # None: the model needs Hugging Face's own cache
                cache = preallocated_cache(self.model, prompts["input_ids"].shape[1] + sampling.max_new_tokens)
                if cache is not None:
                    kwargs["past_key_values"] = cache
            out = self.model.generate(**prompts, **kwargs)  # [B*n, P+R]
        finally:
            self.model.train(was_training)
        prompt_len = prompts["input_ids"].shape[1]
        response_ids = out[:, prompt_len:]  # [B*n, R]
        response_mask = mask_after_eos(response_ids, self.eos_token_ids)  # [B*n, R]
        response_ids = response_ids.masked_fill(response_mask == 0, pad_id)
        ends = torch.isin(response_ids, torch.tensor(self.eos_token_ids, device=response_ids.device))
        texts = self.tokenizer.batch_decode(response_ids, skip_special_tokens=True)
        return Rollout(
            prompt_ids=prompts["input_ids"].repeat_interleave(n, dim=0),  # [B*n, P]
            prompt_mask=prompts["attention_mask"].repeat_interleave(n, dim=0),  # [B*n, P]
            response_ids=response_ids,
            response_mask=response_mask,
            texts=texts,
            truncated=~ends.any(dim=1),  # [B*n]
            num_samples=n,
        )

    # ------------------------------------------------------------------------------------ log-probs
    def token_logprobs(
        self,
        prompts: dict[str, torch.Tensor],
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        num_samples: int = 1,
        prompt_rows: Sequence[int] | None = None,
        with_entropy: bool = False,
        reuse_image_features: bool = True,
        chunk_rows: int = 4,
        model: nn.Module | None = None,
        temperature: float = 1.0,
        entropy_grad: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token log-probs of ``response_ids`` given the prompts, and optionally the entropy.

        ``prompts`` holds B left-padded prompts (with their images); response row ``i`` answers prompt
        ``prompt_rows[i]`` (default ``i // num_samples``). With ``reuse_image_features`` each image is
        encoded once and its features shared by all rows answering it (gradients add up through the
        reuse), instead of once per row. Padding positions get log-prob 0. Both outputs are of
        ``softmax(logits / temperature)``: give the sampling temperature to score rollouts under the
        distribution that drew them (top-p is not renormalised). ``entropy_grad=False`` returns the entropy without
        its gradient (for a loss that only logs it). Returns ``(logprobs [N, R], entropy [N, R] or None)``.
        """
        rows = (
            list(prompt_rows) if prompt_rows is not None else [i // num_samples for i in range(response_ids.shape[0])]
        )
        if len(rows) != response_ids.shape[0]:
            raise ValueError(f"prompt_rows has {len(rows)} entries for {response_ids.shape[0]} responses.")
        return token_logprobs(
            model if model is not None else self.model,
            prompts,
            response_ids,
            response_mask,
            rows,
            with_entropy=with_entropy,
            reuse_image_features=reuse_image_features,
            chunk_rows=chunk_rows,
            temperature=temperature,
            chunk_tokens=self.logprob_chunk_tokens,
            entropy_grad=entropy_grad,
        )

    @contextlib.contextmanager
    def reference(self) -> Iterator[None]:
        """Run the frozen base model: the LoRA adapter is disabled inside this block."""
        if not self.has_adapter:
            raise RuntimeError(
                "reference() needs LoRA (the base weights are the reference). For full fine-tuning, "
                "keep a separate reference model (the reference-model callback does)."
            )
        with self.model.disable_adapter():
            yield

    # --------------------------------------------------------------------------------------- export
    def save_pretrained(self, out_dir: str | Path, merge_lora: bool = True) -> Path:
        """Write a Hugging Face checkpoint (model + processor) loadable by plain ``transformers``.

        With LoRA and ``merge_lora``, the adapter is folded into the base weights first; this ends the
        adapter's life in this wrapper (use it at the end of training or on a fresh load). Without
        merging, only the adapter is written (load it with ``peft``). A QLoRA base is reloaded in the
        compute dtype for merging, since folding an update into 4-bit weights would round it away.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model = self.model
        if self.has_adapter and merge_lora:
            if self.quantization is not None:
                model = self._merged_from_unquantized()
            else:
                model = model.merge_and_unload()
                self.model = model
                self.lora_settings = None
        model.save_pretrained(out)
        self.processor.save_pretrained(out)
        return out

    def _merged_from_unquantized(self) -> nn.Module:
        from transformers import AutoModelForImageTextToText

        assert self.quantization is not None and self.lora_settings is not None
        base = AutoModelForImageTextToText.from_pretrained(
            self.source, dtype=_DTYPES[self.quantization.compute_dtype], **self._hub_kwargs
        )
        return merged_unquantized(self.model, base, self.lora_settings)


def _is_vision(name: str) -> bool:
    return re.search(r"(^|\.)visual\.", name) is not None


def _is_projector(name: str) -> bool:
    return re.search(r"(^|\.)visual\.merger\.", name) is not None
