"""PolicyWrapper: one Hugging Face vision-language model + its processor, shared by every stage.

It loads any Qwen2-VL / Qwen2.5-VL checkpoint (local directory or hub id) through the ``transformers``
auto classes, applies freezing, LoRA or QLoRA, samples responses, scores per-token log-probs of given
responses, gives reference log-probs by disabling the adapter, and exports a merged checkpoint.

Left out on purpose: prompt encoding (``pebr_lit.data.collate``), rewards, losses and optimisation
(the LightningModules own the loop), and moving weights between stages (``pebr_lit.checkpoint``).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

#: Linear layers of a Qwen2-style decoder; the vision tower uses some of the same names.
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft).

    Args:
        r: Adapter rank.
        alpha: Scaling numerator; the update is scaled by alpha / r.
        dropout: Dropout on the adapter input.
        target_modules: Names of the linear layers that get adapters.
        language_model_only: Restrict adapters to the language model (the vision tower shares layer names).
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    language_model_only: bool = True

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise ValueError(f"lora.r must be a positive integer, got {self.r}.")
        if not self.target_modules:
            raise ValueError("lora.target_modules is empty: name at least one linear layer, e.g. q_proj.")


@dataclass
class QuantizationSettings:
    """4-bit base-model quantisation for QLoRA (bitsandbytes).

    Args:
        quant_type: 4-bit data type, ``nf4`` (QLoRA paper) or ``fp4``.
        double_quant: Quantise the quantisation constants too (saves ~0.4 bit per weight).
        compute_dtype: Dtype of the de-quantised matmuls: bfloat16, float16 or float32.
    """

    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        if self.quant_type not in ("nf4", "fp4"):
            raise ValueError(f"quantization.quant_type must be 'nf4' or 'fp4', got {self.quant_type!r}.")
        if self.compute_dtype not in _DTYPES:
            raise ValueError(f"quantization.compute_dtype must be one of {sorted(_DTYPES)}, got {self.compute_dtype!r}.")


@dataclass
class SamplingSettings:
    """How responses are sampled.

    Args:
        num_samples: Responses per prompt (the GRPO group size).
        temperature: Sampling temperature; ignored when do_sample is false.
        top_p: Nucleus sampling threshold.
        max_new_tokens: Longest response, in tokens.
        do_sample: Sample (true) or decode greedily (false).
    """

    num_samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    do_sample: bool = True

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}.")
        if self.do_sample and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when do_sample is true; set do_sample: false for greedy.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if not self.do_sample and self.num_samples > 1:
            raise ValueError("greedy decoding (do_sample: false) with num_samples > 1 gives identical copies.")


@dataclass
class Rollout:
    """Sampled responses; row ``i`` answers prompt ``i // num_samples``.

    Prompts are left-padded and responses right-padded, so every response starts at column P.
    """

    prompt_ids: torch.Tensor  # [B*n, P]
    prompt_mask: torch.Tensor  # [B*n, P]
    response_ids: torch.Tensor  # [B*n, R]
    response_mask: torch.Tensor  # [B*n, R], 1 up to and including the end-of-turn token
    texts: list[str]  # B*n decoded responses, special tokens removed
    truncated: torch.Tensor  # [B*n] bool, no end-of-turn token within max_new_tokens
    num_samples: int


def _load_dtype(name: str) -> torch.dtype | str:
    if name == "auto":
        return "auto"
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {name!r}.")
    return _DTYPES[name]


class PolicyWrapper(nn.Module):
    """A vision-language policy: HF model + processor, optionally with LoRA or QLoRA.

    Args:
        model_name_or_path: Local directory or hub id of a Qwen2-VL / Qwen2.5-VL checkpoint.
        dtype: Weight dtype: auto (as saved), float32, bfloat16 or float16.
        attn_implementation: Attention kernel: sdpa, eager or flash_attention_2; null = library default.
        freeze_vision: Keep the vision tower's weights fixed (the authors' SFT does).
        freeze_projector: Keep the vision-to-language projector (merger) fixed.
        gradient_checkpointing: Recompute activations in backward to save memory.
        lora: LoRA settings; null trains the full (unfrozen) model.
        quantization: 4-bit QLoRA settings; needs ``lora`` and a CUDA device for training.
        min_pixels: Smallest image area the processor resizes to; null = processor default.
        max_pixels: Largest image area (authors: 1024*28*28); null = processor default.
        revision: Hub revision (branch, tag or commit) when loading by id.
        trust_remote_code: Allow custom model code shipped with the checkpoint.
    """

    def __init__(
        self,
        model_name_or_path: str,
        dtype: str = "auto",
        attn_implementation: str | None = "sdpa",
        freeze_vision: bool = True,
        freeze_projector: bool = True,
        gradient_checkpointing: bool = False,
        lora: LoraSettings | None = None,
        quantization: QuantizationSettings | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        if quantization is not None and lora is None:
            raise ValueError("quantization (QLoRA) needs lora settings too: a 4-bit base model cannot be trained directly.")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.source = model_name_or_path
        self.lora_settings = lora
        self.quantization = quantization
        self._hub_kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}  # the export reloads the same base
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
            load_kwargs.update(self._quantization_kwargs(quantization))
        model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, **load_kwargs)

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
            model = self._add_lora(model, lora)
        # from_pretrained returns eval mode; Lightning keeps module modes as it finds them, so
        # dropout (LoRA's included) would silently stay off in training.
        self.model = model.train()

    # ----------------------------------------------------------------------------------------- loading
    @staticmethod
    def _check_source(path: str) -> None:
        looks_local = path.startswith((".", "/", "~")) or os.sep in path and Path(path).parent.exists()
        if looks_local and not Path(path).expanduser().is_dir():
            raise FileNotFoundError(
                f"model_name_or_path={path!r} is not a directory. Build the tiny demo model with "
                "`python -m pebr_lit.tiny --out runs/demo/assets` (or `make assets`) or point to a saved Hugging Face checkpoint."
            )

    @staticmethod
    def _quantization_kwargs(q: QuantizationSettings) -> dict[str, Any]:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as err:
            raise ImportError("QLoRA needs bitsandbytes: pip install 'pebr-lit[qlora]'.") from err
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=q.quant_type,
            bnb_4bit_use_double_quant=q.double_quant,
            bnb_4bit_compute_dtype=_DTYPES[q.compute_dtype],
        )
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        return {"quantization_config": config, "device_map": {"": device}}

    @staticmethod
    def _add_lora(model: nn.Module, lora: LoraSettings) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        names = "|".join(re.escape(t) for t in lora.target_modules)
        # peft treats a string as a full-match regex: this keeps adapters out of the vision tower,
        # whose MLP reuses names such as gate_proj.
        targets: str | list[str] = rf".*language_model.*\.({names})" if lora.language_model_only else list(lora.target_modules)
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets)
        return get_peft_model(model, config)

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
            }
            if sampling.do_sample:
                kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            if self.suppressed_token_ids:
                kwargs["suppress_tokens"] = self.suppressed_token_ids
            out = self.model.generate(**prompts, **kwargs)  # [B*n, P+R]
        finally:
            self.model.train(was_training)
        prompt_len = prompts["input_ids"].shape[1]
        response_ids = out[:, prompt_len:]  # [B*n, R]
        response_mask = _mask_after_eos(response_ids, self.eos_token_ids)  # [B*n, R]
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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token log-probs of ``response_ids`` given the prompts, and optionally the entropy.

        ``prompts`` holds B left-padded prompts (with their images); response row ``i`` answers prompt
        ``prompt_rows[i]`` (default ``i // num_samples``). With ``reuse_image_features`` each image is
        encoded once and its features shared by all rows answering it (gradients add up through the
        reuse), instead of once per row. Padding positions get log-prob 0.
        Returns ``(logprobs [N, R], entropy [N, R] or None)``.
        """
        rows = list(prompt_rows) if prompt_rows is not None else [i // num_samples for i in range(response_ids.shape[0])]
        if len(rows) != response_ids.shape[0]:
            raise ValueError(f"prompt_rows has {len(rows)} entries for {response_ids.shape[0]} responses.")
        model = model if model is not None else self.model
        inputs = self._select_inputs(prompts, rows, reuse_image_features, model)
        resp_len = response_ids.shape[1]
        inputs["input_ids"] = torch.cat([inputs["input_ids"], response_ids], dim=1)  # [N, P+R]
        inputs["attention_mask"] = torch.cat([inputs["attention_mask"], response_mask.to(inputs["attention_mask"].dtype)], dim=1)
        if "mm_token_type_ids" in inputs:  # response tokens are text (type 0)
            zeros = torch.zeros_like(response_ids, dtype=inputs["mm_token_type_ids"].dtype)
            inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], zeros], dim=1)
        # Keep logits for the R positions that predict response tokens only: the prompt's logits are
        # never needed and a 150k vocabulary makes them the largest tensor of the step.
        logits = model(**inputs, use_cache=False, logits_to_keep=resp_len + 1).logits[:, :-1]  # [N, R, V]
        logprobs, entropies = [], []
        for start in range(0, logits.shape[0], chunk_rows):  # fp32 log-softmax chunked over rows
            logp = logits[start : start + chunk_rows].float().log_softmax(-1)  # [c, R, V]
            ids = response_ids[start : start + chunk_rows]
            logprobs.append(logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1))  # [c, R]
            if with_entropy:
                entropies.append(-(logp.exp() * logp).sum(-1))  # [c, R]
        keep = response_mask.bool()  # [N, R]
        out = torch.where(keep, torch.cat(logprobs), 0.0)  # [N, R]
        ent = torch.where(keep, torch.cat(entropies), 0.0) if with_entropy else None
        return out, ent

    def _select_inputs(self, prompts: dict[str, torch.Tensor], rows: list[int], reuse_image_features: bool, model: nn.Module) -> dict[str, Any]:
        """Model inputs for prompt rows ``rows`` (repeats allowed), images included."""
        config = model.config
        counts = images_per_row(prompts, config.image_token_id, config.vision_config.spatial_merge_size)
        inputs, order = select_prompt_rows(prompts, rows, counts)
        hf_model = model.get_base_model() if hasattr(model, "get_base_model") else model  # under any peft wrapper
        supports = "mm_encoder_outputs" in inspect.signature(hf_model.forward).parameters
        if reuse_image_features and order and supports:
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            features = hf_model.get_image_features(prompts["pixel_values"], prompts["image_grid_thw"], return_dict=True)
            per_image = features.pooler_output  # tuple of [tokens_i, D], one per prompt image
            del inputs["pixel_values"]
            inputs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=tuple(per_image[j] for j in order))}
        return inputs

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
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from transformers import AutoModelForImageTextToText

        assert self.quantization is not None and self.lora_settings is not None
        base = AutoModelForImageTextToText.from_pretrained(self.source, dtype=_DTYPES[self.quantization.compute_dtype], **self._hub_kwargs)
        trained = {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
        fresh = self._add_lora(base, self.lora_settings)
        set_peft_model_state_dict(fresh, get_peft_model_state_dict(self.model))
        with torch.no_grad():  # non-adapter parameters that were trained (e.g. an unfrozen projector)
            params = dict(fresh.named_parameters())
            for name, value in trained.items():
                if "lora_" not in name and name in params:
                    params[name].copy_(value)
        return fresh.merge_and_unload()


def images_per_row(prompts: dict[str, torch.Tensor], image_token_id: int, merge_size: int) -> list[int]:
    """How many images each prompt row holds, from its image placeholder tokens and the image grids."""
    if "image_grid_thw" not in prompts:
        return [0] * prompts["input_ids"].shape[0]
    tokens_per_image = (prompts["image_grid_thw"].prod(-1) // merge_size**2).tolist()  # [num_images]
    row_tokens = (prompts["input_ids"] == image_token_id).sum(dim=1).tolist()  # [B]
    counts, image = [], 0
    for needed in row_tokens:
        start = image
        while needed > 0 and image < len(tokens_per_image):
            needed -= tokens_per_image[image]
            image += 1
        if needed != 0:
            raise ValueError("image placeholder tokens do not match image_grid_thw; was the prompt truncated?")
        counts.append(image - start)
    return counts


def select_prompt_rows(
    prompts: dict[str, torch.Tensor], rows: Sequence[int], images_per_prompt: Sequence[int]
) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Gather prompt rows ``rows`` (repeats allowed) with their images' patches.

    Returns the new batch and, for each image in it, the index of the source image in ``prompts``.
    ``images_per_prompt`` (see ``images_per_row``) says which image blocks belong to which row.
    """
    index = torch.tensor(list(rows), dtype=torch.long)
    out: dict[str, torch.Tensor] = {}
    order: list[int] = []
    if "image_grid_thw" in prompts:
        grid = prompts["image_grid_thw"]  # [num_images, 3]
        if sum(images_per_prompt) != grid.shape[0]:
            raise ValueError(f"images_per_prompt sums to {sum(images_per_prompt)} but the batch holds {grid.shape[0]} images.")
        firsts = [sum(images_per_prompt[:r]) for r in range(len(images_per_prompt))]
        order = [firsts[r] + k for r in rows for k in range(images_per_prompt[r])]
        blocks = prompts["pixel_values"].split(grid.prod(-1).tolist())  # per image [patches_i, D]
        out["pixel_values"] = torch.cat([blocks[j] for j in order]) if order else prompts["pixel_values"][:0]
        out["image_grid_thw"] = grid[order]  # [images in selection, 3]
    for key, value in prompts.items():
        if key not in out:
            out[key] = value[index.to(value.device)] if torch.is_tensor(value) and value.dim() >= 1 else value
    return out, order


def expand_prompts(prompts: dict[str, torch.Tensor], n: int, images_per_prompt: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """Repeat each prompt (with its images) ``n`` times, keeping row order ``i -> i // n``."""
    batch = prompts["input_ids"].shape[0]
    counts = list(images_per_prompt) if images_per_prompt is not None else [1 if "image_grid_thw" in prompts else 0] * batch
    return select_prompt_rows(prompts, [r for r in range(batch) for _ in range(n)], counts)[0]


def _mask_after_eos(ids: torch.Tensor, eos_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first end token of each row, 0 after it."""
    is_end = torch.isin(ids, torch.tensor(eos_ids, device=ids.device))  # [N, R]
    # Number of end tokens strictly before each position; positions with none are kept.
    before = torch.cumsum(is_end.long(), dim=1) - is_end.long()  # [N, R]
    return (before == 0).long()


def _is_vision(name: str) -> bool:
    return re.search(r"(^|\.)visual\.", name) is not None


def _is_projector(name: str) -> bool:
    return re.search(r"(^|\.)visual\.merger\.", name) is not None
