"""Settings of the policy: LoRA, QLoRA quantisation and sampling, as typed config groups.

Small typed groups that jsonargparse turns into config sections (``policy.lora``,
``policy.quantization``, ``sampling``) with one doc line per field; checks run at construction.

Left out on purpose: the model itself (``policy.wrapper``) and the record it returns (``policy.rollout``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

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
            raise ValueError(f"LoraSettings.r={self.r!r}: must be a positive integer. Set lora.r to e.g. 16 or 64.")
        if not self.target_modules:
            raise ValueError(
                "LoraSettings.target_modules=[]: names no layer. List at least one linear layer, e.g. [q_proj, v_proj]."
            )


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
            raise ValueError(
                f"QuantizationSettings.quant_type={self.quant_type!r}: not a 4-bit type. Use 'nf4' or 'fp4'."
            )
        if self.compute_dtype not in _DTYPES:
            raise ValueError(
                f"QuantizationSettings.compute_dtype={self.compute_dtype!r}: unknown dtype. "
                f"Use one of {sorted(_DTYPES)}."
            )


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
            raise ValueError(
                f"SamplingSettings.num_samples={self.num_samples!r}: must be >= 1. Use 1 to evaluate, 8 for GRPO."
            )
        if self.do_sample and self.temperature <= 0:
            raise ValueError(
                f"SamplingSettings.temperature={self.temperature!r}: must be > 0 when do_sample is true. "
                "Set do_sample: false for greedy decoding."
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(
                f"SamplingSettings.top_p={self.top_p!r}: must be in (0, 1]. Use 1.0 to keep the whole distribution."
            )
        if not self.do_sample and self.num_samples > 1:
            raise ValueError(
                f"SamplingSettings.num_samples={self.num_samples!r}: greedy decoding (do_sample: false) gives "
                "identical copies. Set do_sample: true or num_samples: 1."
            )
