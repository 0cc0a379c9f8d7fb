"""sglang rollout engines: a running sglang server by URL, or an in-process offline engine (GPU only).

Both send sglang's native generate request (``sglang_io``) and, after each rollout batch's update, load
the policy's merged weights (LoRA folded in; ``weights``) by a documented sglang path:

- ``SGLangServer`` writes a safetensors checkpoint into ``sync_dir`` and POSTs
  ``/update_weights_from_disk`` with ``{"model_path": sync_dir}``; the answer is
  ``{"success": bool, "message": str}`` (HTTP 400 on failure). The server must be able to read
  ``sync_dir``. sglang flushes its prefix cache after a weight update by itself.
- ``SGLangOffline`` hands tensors to ``Engine.update_weights_from_tensor(named_tensors=[(name, tensor)],
  flush_cache=...)`` in buckets, flushing the cache with the last one.

Every call waits at most ``timeout_s``: a server that does not answer, or an engine that hangs while
starting (sglang's engine does on a machine without a GPU), raises instead of stalling the run.

Log-probs (``return_logprob``), read from sglang's ``Sampler``: by default sglang reports
``log softmax(logits / T)`` at the request's sampling temperature T, before top-p/top-k filtering;
with the environment variable ``SGLANG_RETURN_ORIGINAL_LOGPROB=1`` (read when its processes start)
it reports ``log softmax(logits)``; greedy requests always get the latter. ``SGLangOffline`` sets or
clears the variable to give the trainer's temperature; a server reports what it was started with
(``SGLangServer.original_logprobs`` says which).

Not run here: no machine of this project can install sglang next to a GPU, so these classes are
tested against a fake server and a fake ``Engine`` built from sglang's docs and source only.

Left out on purpose: the wire format (``sglang_io``) and the merged weights (``weights``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import queue
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch

from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rollout.base import EngineRollout, RolloutEngine
from pebr_lit.rollout.sglang_io import (
    build_generate_request,
    encode_image,
    parse_generate_outputs,
)
from pebr_lit.rollout.weights import engine_weights, save_engine_weights

#: Set to 1: sglang reports log-probs at temperature 1 instead of the sampling temperature.
ORIGINAL_LOGPROB_ENV = "SGLANG_RETURN_ORIGINAL_LOGPROB"


class SGLangEngine(RolloutEngine):
    """What both sglang engines share: the request, the parsing and the log-prob check settings."""

    def __init__(self, timeout_s: float, check_logprobs: bool, logprob_tolerance: float) -> None:
        if timeout_s <= 0:
            raise ValueError(
                f"{type(self).__name__}.timeout_s={timeout_s!r}: must be > 0 seconds. "
                "Use e.g. 600 (a full rollout batch of long responses takes minutes)."
            )
        self.timeout_s = timeout_s
        self.check_logprobs = check_logprobs
        self.logprob_tolerance = logprob_tolerance
        self._warned_prompt_length = False

    def _reported_temperature(self, original: bool, sampling: SamplingSettings) -> float | None:
        """The T of sglang's ``log softmax(logits / T)`` for ``sampling``; None without log-probs."""
        if not self.check_logprobs:
            return None
        return 1.0 if original or not sampling.do_sample else sampling.temperature

    @abstractmethod
    def _generate(self, policy: PolicyWrapper, request: dict[str, Any]) -> list[dict[str, Any]]:
        """sglang's outputs for a generate request, in request order."""

    def generate(
        self,
        policy: PolicyWrapper,
        prompts: dict[str, torch.Tensor],
        records: Sequence[Any],
        sampling: SamplingSettings,
    ) -> EngineRollout:
        if len(records) != prompts["input_ids"].shape[0]:
            raise ValueError(
                f"{len(records)} records for {prompts['input_ids'].shape[0]} prompts: pass the batch's records."
            )
        images = [[encode_image(image) for image in record.load_images()] for record in records]
        request = build_generate_request(prompts, images, sampling, policy.eos_token_ids, self.check_logprobs)
        pad_id = policy.tokenizer.pad_token_id if policy.tokenizer.pad_token_id is not None else 0
        parsed = parse_generate_outputs(
            self._generate(policy, request),
            len(request["input_ids"]),
            pad_id,
            policy.eos_token_ids,
            policy.suppressed_token_ids,
            sampling.max_new_tokens,
            self.check_logprobs,
        )
        self._check_prompt_lengths(request["input_ids"], parsed.prompt_tokens)
        n, device = sampling.num_samples, prompts["input_ids"].device
        return EngineRollout(
            prompt_ids=prompts["input_ids"].repeat_interleave(n, dim=0),  # [B*n, P]
            prompt_mask=prompts["attention_mask"].repeat_interleave(n, dim=0),  # [B*n, P]
            response_ids=parsed.response_ids.to(device),  # [B*n, R]
            response_mask=parsed.response_mask.to(device),  # [B*n, R]
            texts=policy.tokenizer.batch_decode(parsed.response_ids, skip_special_tokens=True),
            truncated=parsed.truncated.to(device),  # [B*n]
            num_samples=n,
            logprobs=parsed.logprobs.to(device) if parsed.logprobs is not None else None,  # [B*n, R]
        )

    def _check_prompt_lengths(self, sent: list[list[int]], seen: list[int | None]) -> None:
        bad = [(i, len(ids), k) for i, (ids, k) in enumerate(zip(sent, seen)) if k is not None and k != len(ids)]
        if bad and not self._warned_prompt_length:
            self._warned_prompt_length = True
            i, ours, theirs = bad[0]
            warnings.warn(
                f"sglang read prompt {i} as {theirs} tokens, the trainer as {ours}: its image processor sizes images "
                "differently (min_pixels/max_pixels), so rollouts answer other image tokens than the trainer scores. "
                "Serve the checkpoint with the policy's processor settings.",
                stacklevel=2,
            )


# ------------------------------------------------------------------------------------------- server
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a cluster-local server: never via http_proxy


def _post(url: str, endpoint: str, payload: dict[str, Any], timeout_s: float) -> Any:
    where = url.rstrip("/") + endpoint
    request = urllib.request.Request(
        where, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        raise RuntimeError(
            f"sglang server {where} answered HTTP {err.code}: {err.read().decode(errors='replace')[:500]}"
        ) from err
    except TimeoutError as err:
        raise TimeoutError(
            f"sglang server {where} did not answer within timeout_s={timeout_s} s; is it stuck or overloaded?"
        ) from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise TimeoutError(f"sglang server {where} did not answer within timeout_s={timeout_s} s.") from err
        raise ConnectionError(
            f"cannot reach the sglang server at {url} ({err.reason}). Start one with `python -m sglang.launch_server "
            "--model-path <checkpoint> --port <port>` or fix rollout_engine.init_args.url."
        ) from err
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise RuntimeError(f"sglang server {where} answered with non-JSON: {body[:200]!r}") from err


def _check_update(result: Any, where: str) -> None:
    """sglang answers a weight update with {"success", "message"} (HTTP) or (success, message, ...) (Engine)."""
    if isinstance(result, dict):
        ok, message = result.get("success"), result.get("message", "")
    elif isinstance(result, (tuple, list)) and result:
        ok, message = result[0], result[1] if len(result) > 1 else ""
    else:
        raise RuntimeError(f"{where}: unexpected answer {result!r}.")
    if ok is not True:
        raise RuntimeError(
            f"{where} failed: {message}. The engine must serve the policy's architecture (same names and shapes)."
        )


class SGLangServer(SGLangEngine):
    """A running sglang server, started with ``python -m sglang.launch_server --model-path <ckpt> --port <port>``.

    Started so, it reports log-probs at the sampling temperature, which the trainer's are by default
    (``GRPOModule.logprob_temperature: null``). For ``logprob_temperature: 1.0`` start it with
    ``SGLANG_RETURN_ORIGINAL_LOGPROB=1`` in front and set ``original_logprobs: true``. When the two
    differ, the module skips the log-prob comparison and says so once.

    Args:
        url: Server address, e.g. http://127.0.0.1:30000.
        timeout_s: Longest wait for one request (generate or weight update), seconds.
        sync_dir: Where each sync writes the merged weights; the server must read it. null = a temp dir on this
            machine.
        shard_mb: Largest safetensors shard written at a sync, MiB.
        check_logprobs: Log the engine's log-prob gap to the trainer's (an extra no-grad forward per step if
            mini_batches is 1).
        logprob_tolerance: Mean log-prob gap (nats per token) above which the module warns.
        original_logprobs: The server was started with SGLANG_RETURN_ORIGINAL_LOGPROB=1 (temperature-1 log-probs);
            false = without it (log-probs at the sampling temperature, sglang's default).
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 600.0,
        sync_dir: str | None = None,
        shard_mb: int = 2048,
        check_logprobs: bool = True,
        logprob_tolerance: float = 0.05,
        original_logprobs: bool = False,
    ) -> None:
        super().__init__(timeout_s, check_logprobs, logprob_tolerance)
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"SGLangServer.url={url!r}: must start with http:// or https://. "
                "Give the server's address, e.g. http://127.0.0.1:30000."
            )
        self.url = url.rstrip("/")
        self.sync_dir = sync_dir
        self.shard_mb = shard_mb
        self.original_logprobs = original_logprobs
        self._temp_dir: str | None = None

    def choose_logprob_temperature(self, temperature: float, sampling: SamplingSettings) -> float | None:
        return self._reported_temperature(self.original_logprobs, sampling)  # fixed when the server started

    def _generate(self, policy: PolicyWrapper, request: dict[str, Any]) -> list[dict[str, Any]]:
        outputs = _post(self.url, "/generate", request, self.timeout_s)
        return outputs if isinstance(outputs, list) else [outputs]

    def _sync_path(self) -> Path:
        if self.sync_dir is not None:
            return Path(self.sync_dir)
        if self._temp_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="pebr-lit-weights-")
        return Path(self._temp_dir)

    def sync_weights(self, policy: PolicyWrapper) -> None:
        # One server may serve every DDP rank: rank 0 writes and loads, the others wait for it.
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:
            path = save_engine_weights(policy, self._sync_path(), self.shard_mb << 20)
            answer = _post(self.url, "/update_weights_from_disk", {"model_path": str(path.resolve())}, self.timeout_s)
            _check_update(answer, f"{self.url}/update_weights_from_disk")
        if distributed:
            torch.distributed.barrier()

    def close(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


# ------------------------------------------------------------------------------------------ offline
class _EngineThread:
    """One daemon thread that runs every call into the in-process engine, each with a deadline.

    sglang's ``Engine`` runs its requests on the event loop of the thread that built it, so all calls
    go to that one thread. A call past its deadline leaves the thread stuck; later calls then fail
    at once instead of queueing behind it.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue()
        self._stuck: str | None = None
        threading.Thread(target=self._serve, name="sglang-engine", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as err:  # handed to the caller, whatever it is
                future.set_exception(err)

    def run(self, job: Callable[[], Any], timeout_s: float, what: str) -> Any:
        if self._stuck is not None:
            raise RuntimeError(f"the sglang engine is still stuck in {self._stuck}; restart the run.")
        future: Future = Future()
        self._jobs.put((job, future))
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            if future.done():  # the job itself raised TimeoutError
                raise
            self._stuck = what
            raise TimeoutError(
                f"sglang engine: {what} did not finish within timeout_s={timeout_s} s. Without a working GPU "
                "sglang's engine hangs while starting; with one, raise timeout_s for large checkpoints."
            ) from None


class SGLangOffline(SGLangEngine):
    """An sglang ``Engine`` in this process, next to the trainer on the same GPU(s).

    Its log-probs follow the trainer's temperature: temperature 1 sets SGLANG_RETURN_ORIGINAL_LOGPROB=1
    before the engine starts, the sampling temperature clears it (any other cannot be reported).
    Used alone, without a GRPO module choosing, it reports temperature-1 log-probs.

    Args:
        model_path: Checkpoint the engine starts from; null = the policy's model_name_or_path (the first sync
            replaces its weights).
        mem_fraction_static: Share of GPU memory for the engine's weights and KV cache; the trainer needs the rest.
        tp_size: Tensor-parallel size of the engine.
        dtype: Engine weight dtype: auto, bfloat16, float16 or float32.
        timeout_s: Longest wait for one engine call (start, generate, weight update), seconds.
        bucket_mb: Weights handed over per update_weights_from_tensor call, MiB.
        engine_kwargs: Further sglang ServerArgs fields passed to sglang.Engine.
        check_logprobs: Log the engine's log-prob gap to the trainer's (an extra no-grad forward per step if
            mini_batches is 1).
        logprob_tolerance: Mean log-prob gap (nats per token) above which the module warns.
    """

    def __init__(
        self,
        model_path: str | None = None,
        mem_fraction_static: float = 0.4,
        tp_size: int = 1,
        dtype: str = "auto",
        timeout_s: float = 600.0,
        bucket_mb: int = 1024,
        engine_kwargs: dict[str, Any] | None = None,
        check_logprobs: bool = True,
        logprob_tolerance: float = 0.05,
    ) -> None:
        super().__init__(timeout_s, check_logprobs, logprob_tolerance)
        try:
            found = importlib.util.find_spec("sglang") is not None
        except ValueError:  # a module without a spec is in sys.modules: it imports
            found = True
        if not found:
            raise ImportError(
                "SGLangOffline needs sglang, which is not installed: pip install 'pebr-lit[sglang]' on a GPU machine "
                "(~11 GB), or use rollout_engine: null (Hugging Face generate, works on CPU)."
            )
        if not torch.cuda.is_available():
            raise RuntimeError(
                "SGLangOffline needs a CUDA GPU and none is visible (sglang's engine hangs without one). Use "
                "rollout_engine: null (Hugging Face generate, works on CPU) "
                "or SGLangServer with a server on a GPU machine."
            )
        if not 0 < mem_fraction_static < 1:
            raise ValueError(
                f"SGLangOffline.mem_fraction_static={mem_fraction_static!r}: must be in (0, 1), a share of GPU memory. "
                "Use the default 0.4, lower when training shares the GPU."
            )
        self.model_path = model_path
        self.engine_args = {
            "tp_size": tp_size,
            "mem_fraction_static": mem_fraction_static,
            "dtype": dtype,
            **(engine_kwargs or {}),
        }
        self.bucket_mb = bucket_mb
        self._original_logprobs = True  # until choose_logprob_temperature says otherwise
        self._thread: _EngineThread | None = None
        self._engine: Any = None

    def choose_logprob_temperature(self, temperature: float, sampling: SamplingSettings) -> float | None:
        if self._engine is None:  # a running engine read the variable when it started
            self._original_logprobs = math.isclose(temperature, 1.0)
        return self._reported_temperature(self._original_logprobs, sampling)

    def _started(self, policy: PolicyWrapper) -> Any:
        if self._engine is None:
            if self.check_logprobs:  # read by sglang's processes as they start, so set before the engine
                if self._original_logprobs:
                    os.environ[ORIGINAL_LOGPROB_ENV] = "1"
                else:
                    os.environ.pop(ORIGINAL_LOGPROB_ENV, None)
            sglang = importlib.import_module("sglang")
            args = {"model_path": self.model_path or policy.source, **self.engine_args}
            self._thread = self._thread or _EngineThread()
            self._engine = self._thread.run(lambda: sglang.Engine(**args), self.timeout_s, "starting the engine")
        return self._engine

    def _call(self, policy: PolicyWrapper, what: str, **kwargs: Any) -> Any:
        engine = self._started(policy)
        assert self._thread is not None
        return self._thread.run(lambda: getattr(engine, what)(**kwargs), self.timeout_s, what)

    def _generate(self, policy: PolicyWrapper, request: dict[str, Any]) -> list[dict[str, Any]]:
        outputs = self._call(policy, "generate", **request)
        return outputs if isinstance(outputs, list) else [outputs]

    def sync_weights(self, policy: PolicyWrapper) -> None:
        limit = self.bucket_mb << 20
        bucket: list[tuple[str, torch.Tensor]] = []
        size = 0
        for name, tensor in engine_weights(policy):
            nbytes = tensor.numel() * tensor.element_size()
            if bucket and size + nbytes > limit:
                self._push(policy, bucket, flush_cache=False)
                bucket, size = [], 0
            bucket.append((name, tensor))
            size += nbytes
        self._push(policy, bucket, flush_cache=True)  # the cache goes once the last weights are in

    def _push(self, policy: PolicyWrapper, bucket: list[tuple[str, torch.Tensor]], flush_cache: bool) -> None:
        answer = self._call(policy, "update_weights_from_tensor", named_tensors=bucket, flush_cache=flush_cache)
        _check_update(answer, "sglang Engine.update_weights_from_tensor")

    def close(self) -> None:
        if self._engine is not None and self._thread is not None:
            engine, self._engine = self._engine, None
            self._thread.run(engine.shutdown, self.timeout_s, "shutting down")
