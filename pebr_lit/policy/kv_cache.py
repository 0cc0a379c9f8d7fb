"""A preallocated KV cache for Hugging Face ``generate``: one buffer per layer, written in place.

Hugging Face's default ``DynamicCache`` appends each decoded token with ``torch.cat``, which copies the
whole key/value cache of every layer at every step: O(L^2) bytes moved over a response, and on the
tiny demo model on CPU the largest single cost of ``generate`` (34 % of a 256-row, 192-token call).
``PreallocatedCache`` allocates ``[B, KV, capacity, D]`` once, at the first (prefill) update, copies
each step's new keys/values into it, and hands attention the view ``[:, :, :length]``: the same
values, in the same order, as the concatenated tensor, so attention sees the same numbers (the
contract test checks the sampled tokens are bitwise identical). Decoding itself stays Hugging Face's:
logits processors, sampling and stopping are untouched.

Unlike ``StaticCache`` (``cache_implementation="static"``), attention runs over the tokens seen so
far, not over the full capacity with the tail masked out: no wasted attention, and the same shapes
(hence the same kernel reductions) as with the dynamic cache.

Left out on purpose: sliding-window, chunked and linear-attention layers (``preallocated_cache``
returns ``None`` for such models and the caller keeps Hugging Face's default cache), beam search
reordering tricks, offloading, and ``torch.compile`` (the returned views change shape every step).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

#: Values of ``PolicyWrapper(kv_cache=...)``.
KV_CACHES = ("auto", "dynamic", "preallocated")


def wants_preallocated(mode: str, device: torch.device) -> bool:
    """Whether ``kv_cache=mode`` asks for this cache on ``device``.

    ``auto`` (the default) means preallocated on the CPU, where the contract tests prove it samples bitwise the
    same tokens as Hugging Face's cache, and dynamic elsewhere until a GPU run has proved it there too.
    """
    return mode == "preallocated" or (mode == "auto" and device.type == "cpu")


class PreallocatedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys/values live in a buffer sized for the whole generation.

    ``self.keys`` / ``self.values`` are always the filled prefix ``[B, KV, length, D]`` of the buffers
    (views), so code that reads them directly sees what a ``DynamicLayer`` would hold.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._key_buffer: torch.Tensor | None = None  # [B, KV, capacity, D]
        self._value_buffer: torch.Tensor | None = None  # [B, KV, capacity, Dv]

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, new, _ = key_states.shape
        size = max(self.capacity, new)
        self._key_buffer = key_states.new_empty(batch, heads, size, key_states.shape[-1])
        self._value_buffer = value_states.new_empty(batch, heads, size, value_states.shape[-1])
        self.length = 0
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        assert self._key_buffer is not None and self._value_buffer is not None
        new = key_states.shape[-2]
        end = self.length + new
        if end > self._key_buffer.shape[-2]:  # past the planned capacity: grow (doubling), never fail
            self._grow(max(end, 2 * self._key_buffer.shape[-2]))
        self._key_buffer[:, :, self.length : end].copy_(key_states)  # [B, KV, new, D]
        self._value_buffer[:, :, self.length : end].copy_(value_states)
        self.length = end
        self.keys = self._key_buffer[:, :, :end]  # [B, KV, length, D], a view
        self.values = self._value_buffer[:, :, :end]
        return self.keys, self.values

    def _grow(self, size: int) -> None:
        assert self._key_buffer is not None and self._value_buffer is not None
        keys = self._key_buffer.new_empty(*self._key_buffer.shape[:2], size, self._key_buffer.shape[-1])
        values = self._value_buffer.new_empty(*self._value_buffer.shape[:2], size, self._value_buffer.shape[-1])
        keys[:, :, : self.length].copy_(self._key_buffer[:, :, : self.length])
        values[:, :, : self.length].copy_(self._value_buffer[:, :, : self.length])
        self._key_buffer, self._value_buffer = keys, values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        self.length = 0
        super().reset()

    def _replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Rebuild the buffers around new contents ``[B', KV, length', D]`` (crop, reorder, select)."""
        self.is_initialized = False
        self.capacity = max(self.capacity, keys.shape[-2])
        self.update(keys, values)

    def crop(self, tokens_to_remove: int) -> None:
        if not self.is_initialized:
            return
        if tokens_to_remove > 0:  # legacy meaning in DynamicLayer: the length to keep
            keep = min(tokens_to_remove, self.length)
        else:
            keep = self.length - abs(tokens_to_remove)
        self.length = keep
        self.keys = self._key_buffer[:, :, :keep]  # type: ignore[index]
        self.values = self._value_buffer[:, :, :keep]  # type: ignore[index]

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.get_seq_length() > 0:
            self._replace(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.get_seq_length() > 0:
            self._replace(self.keys[indices, ...], self.values[indices, ...])

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.get_seq_length() > 0:
            index = beam_idx.to(self.device)
            self._replace(self.keys.index_select(0, index), self.values.index_select(0, index))


def preallocated_cache(model: Any, capacity: int) -> Cache | None:
    """A ``Cache`` of ``PreallocatedLayer`` for ``model``'s decoder, or ``None`` where it does not apply.

    ``capacity`` is the prompt length plus ``max_new_tokens``. ``None`` means: keep Hugging Face's own
    choice. That is the case for decoders whose layers are not all plain full attention (sliding
    windows, chunked or linear attention, shared KV layers), and for checkpoints whose generation
    config turns the cache off or names a ``cache_implementation`` (generate refuses a cache object then).
    """
    generation = getattr(model, "generation_config", None)
    if getattr(generation, "use_cache", None) is False or getattr(generation, "cache_implementation", None) is not None:
        return None
    config = model.config.get_text_config(decoder=True)
    layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(layers, int) or layers <= 0 or getattr(config, "num_kv_shared_layers", None):
        return None
    types = getattr(config, "layer_types", None)
    if types is None:  # how Hugging Face infers them (cache_utils.get_layer_types_and_kwargs)
        windowed = (
            getattr(config, "sliding_window", None) is not None
            or getattr(config, "attention_chunk_size", None) is not None
        )
        types = ["sliding_attention" if windowed else "full_attention"] * layers
    if len(types) != layers or any(t != "full_attention" for t in types):
        return None
    return Cache(layers=[PreallocatedLayer(capacity) for _ in range(layers)])
