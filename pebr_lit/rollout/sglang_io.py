"""sglang's native generate format: a request from a prompt batch, and its outputs back as tensors.

Built from sglang's documented ``/generate`` interface (docs/basic_usage/sampling_params.md and
``io_struct.py::GenerateReqInput``; ``Engine.generate`` takes the same fields), which the HTTP
server and the in-process engine share:

- request: ``input_ids`` (one token list per sequence), ``image_data`` (one list of base64 strings per
  sequence), ``sampling_params`` (``max_new_tokens``, ``temperature`` (0 = greedy), ``top_p``,
  ``top_k``, ``min_p``, ``repetition_penalty``, ``stop_token_ids``), ``return_logprob``;
- output (one per sequence, in request order): ``output_ids``, ``meta_info`` with ``finish_reason``
  (``{"type": "stop", "matched": id}``, ``{"type": "length", "length": n}`` or ``{"type": "abort",
  "message": ...}``), ``prompt_tokens`` and, with ``return_logprob``, ``output_token_logprobs``
  (``[logprob, token_id, text]`` per generated token).

Each prompt is sent ``num_samples`` times with ``n`` left at 1 (sglang's docs advise repeating
prompts over ``n > 1``), which also fixes the order: output ``i`` answers prompt ``i // num_samples``.
The prompt ids are the trainer's own, image placeholders already expanded; sglang's Qwen-VL
processor matches an expanded ``<|vision_start|><|image_pad|>...<|vision_end|>`` block and re-expands
it for the image it receives.

Left out on purpose: transport (``sglang``), decoding texts and the Rollout record (``sglang``).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pebr_lit.policy.settings import SamplingSettings

#: sglang's ``load_image`` treats a string ending like a file name as a path before trying base64.
_PATH_SUFFIXES = ("png", "jpg", "jpeg", "webp", "gif")


def encode_image(image: Any) -> str:
    """A PIL image as base64 PNG, re-encoded until its text cannot pass for a file name."""
    for level in (6, 9, 1, 0):  # another zlib level changes the bytes, hence the text's tail
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=level)
        text = _b64(buffer.getvalue())
        if not text.lower().endswith(_PATH_SUFFIXES):
            return text
    raise ValueError("every PNG encoding of this image ends like a file name; sglang would read it as a path.")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def prompt_rows(prompts: dict[str, torch.Tensor]) -> list[list[int]]:
    """The token ids of each left-padded prompt row, padding removed."""
    ids, mask = prompts["input_ids"], prompts["attention_mask"].bool()  # [B, P] x2
    return [row[keep].tolist() for row, keep in zip(ids, mask)]


def sampling_params(sampling: SamplingSettings, stop_token_ids: Sequence[int]) -> dict[str, Any]:
    """sglang ``sampling_params`` equal to ``PolicyWrapper.generate``'s plain sampling.

    Every knob is set, because sglang otherwise takes defaults from the checkpoint's
    generation_config.json (Qwen2.5-VL's: top_k 1, repetition_penalty 1.05).
    """
    return {
        "max_new_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature if sampling.do_sample else 0.0,
        "top_p": sampling.top_p if sampling.do_sample else 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "stop_token_ids": sorted(stop_token_ids),
    }


def build_generate_request(
    prompts: dict[str, torch.Tensor],
    images: Sequence[Sequence[str]],
    sampling: SamplingSettings,
    stop_token_ids: Sequence[int],
    return_logprob: bool,
) -> dict[str, Any]:
    """The ``/generate`` body for B prompts x ``num_samples``; ``images[i]`` are prompt i's base64 images."""
    rows = prompt_rows(prompts)
    if len(images) != len(rows):
        raise ValueError(f"{len(images)} image lists for {len(rows)} prompts: pass one record per prompt row.")
    n = sampling.num_samples
    request: dict[str, Any] = {
        "input_ids": [ids for ids in rows for _ in range(n)],
        "sampling_params": sampling_params(sampling, stop_token_ids),
        "return_logprob": return_logprob,
    }
    if any(images):
        request["image_data"] = [list(row) for row in images for _ in range(n)]
    return request


@dataclass
class ParsedOutputs:
    """Engine outputs as right-padded tensors, row ``i`` = request sequence ``i``."""

    response_ids: torch.Tensor  # [N, R], pad after the end token
    response_mask: torch.Tensor  # [N, R], 1 up to and including the end token
    truncated: torch.Tensor  # [N] bool, no end token kept
    logprobs: torch.Tensor | None  # [N, R] engine log-probs; 0 on padding, NaN where none matched
    prompt_tokens: list[int | None]  # prompt length the engine saw, per row


def _row(output: dict[str, Any], i: int, return_logprob: bool) -> tuple[list[int], list[Any], dict[str, Any]]:
    if not isinstance(output, dict):
        raise ValueError(f"sglang output {i} is {type(output).__name__}, expected a JSON object.")
    meta = output.get("meta_info") or {}
    finish = meta.get("finish_reason")
    finish = finish if isinstance(finish, dict) else {}
    if finish.get("type") == "abort":
        raise RuntimeError(f"sglang aborted response {i}: {finish.get('message', 'no message')}. See the engine's log.")
    entries = list(meta.get("output_token_logprobs") or []) if return_logprob else []
    if "output_ids" in output:
        ids = [int(t) for t in output["output_ids"]]
    elif entries:
        ids = [int(e[1]) for e in entries]
    else:
        raise ValueError(f"sglang output {i} has no output_ids (older servers need --return-token-ids).")
    matched = finish.get("matched")
    if finish.get("type") == "stop" and isinstance(matched, int) and (not ids or ids[-1] != matched):
        ids.append(matched)  # a stop token left out of output_ids is still part of the response the trainer scores
    return ids, entries, meta


def parse_generate_outputs(
    outputs: Sequence[dict[str, Any]],
    num_rows: int,
    pad_id: int,
    eos_ids: Sequence[int],
    suppressed_ids: Sequence[int],
    max_new_tokens: int,
    return_logprob: bool,
) -> ParsedOutputs:
    """Rows of token ids cut at the first end token (kept) or suppressed token (dropped, row truncated).

    A suppressed token (an image placeholder) would break the trainer's next forward, which
    ``PolicyWrapper.generate`` prevents by never sampling one; sglang cannot be told to, so the row
    ends just before it and counts as truncated.
    """
    if len(outputs) != num_rows:
        raise ValueError(f"sglang returned {len(outputs)} outputs for {num_rows} requested sequences.")
    eos, banned = set(eos_ids), set(suppressed_ids)
    rows: list[list[int]] = []
    ended: list[bool] = []
    values: list[list[float]] = []
    prompt_tokens: list[int | None] = []
    for i, output in enumerate(outputs):
        ids, entries, meta = _row(output, i, return_logprob)
        ids = ids[:max_new_tokens]
        stop = next((k for k, t in enumerate(ids) if t in eos or t in banned), None)
        ended.append(stop is not None and ids[stop] in eos)
        if stop is not None:
            ids = ids[: stop + 1] if ended[-1] else ids[:stop]
        rows.append(ids)
        values.append([_logprob(entries, k, t) for k, t in enumerate(ids)])
        prompt_tokens.append(meta.get("prompt_tokens"))
    width = max(1, max(len(r) for r in rows))
    response_ids = torch.full((num_rows, width), pad_id, dtype=torch.long)  # [N, R]
    response_mask = torch.zeros((num_rows, width), dtype=torch.long)  # [N, R]
    logprobs = torch.zeros((num_rows, width))  # [N, R]
    for i, ids in enumerate(rows):
        response_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        response_mask[i, : len(ids)] = 1
        logprobs[i, : len(ids)] = torch.tensor(values[i])
    return ParsedOutputs(
        response_ids=response_ids,
        response_mask=response_mask,
        truncated=~torch.tensor(ended, dtype=torch.bool),  # [N]
        logprobs=logprobs if return_logprob else None,
        prompt_tokens=prompt_tokens,
    )


def _logprob(entries: list[Any], k: int, token: int) -> float:
    """The engine's log-prob of token ``k``, NaN unless its entry is for that very token."""
    if k < len(entries) and entries[k][0] is not None and int(entries[k][1]) == token:
        return float(entries[k][0])
    return math.nan
