"""Answer extraction by a judge model behind an OpenAI-compatible chat endpoint (optional).

The official scorers of MathVista, MathVerse, MathVision, LogicVista, DynaMath and HallusionBench
(as VLMEvalKit runs them) ask a GPT model to pull the final answer out of a free-text response
before comparing it. ``AnswerJudge`` does that step with any server that speaks the
``/v1/chat/completions`` protocol — OpenAI itself, or a judge model served locally by vLLM, sglang
or llama.cpp — and ``judge_rows`` re-grades the judged answer with the benchmark's own rules
(``Benchmark.score``), so a judge only ever *reads* a response; it never decides correctness.

Two modes: ``fallback`` (default) asks the judge only about answers the rules scored wrong — the
judge can then only turn a wrong into a right, when the rules missed the answer in the text (as
VLMEvalKit's scorers try their rules first); ``always`` lets the judge's reading decide every
answer. Requests run in a thread pool, retry with back-off, and are cached in a JSONL file so that
a rerun pays nothing twice. A request that still fails leaves the rule-based score and is counted
(``judge_failed``); a missing endpoint or a bad key stops the run with a clear error instead of
failing every row quietly.

Left out on purpose: the benchmarks' own GPT prompts (this module writes its own), judge-side
scoring of equivalence (MathVerse's second GPT step) and the HTTP part (``data.annotate.client``, shared
with teacher annotation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from pebr_lit.data.annotate.client import ChatClient, ChatEndpoint, EndpointError, RequestFailed
from pebr_lit.data.shards import (
    append_rows,
    complete_lines,
    open_shard,
    shard_path,
    shard_paths,
)
from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    LETTERS,
    YES_NO,
    Benchmark,
    BenchmarkItem,
)
from pebr_lit.format.response import IMAGE_SLOT

NO_ANSWER = "NONE"

_SYSTEM = (
    "You grade nothing. You read a model's response to a question and copy out the final answer that the "
    "response commits to, in the form asked for, with no explanation."
)
_FORMS = {
    CHOICE: "the letter of the option it chooses (A, B, C, ...)",
    YES_NO: "Yes or No",
    "free_form": "the final value, expression or short phrase, without units",
}
# Two worked examples of the task (written for this project), so that small judge models keep the form.
_EXAMPLES = (
    (
        "What is the perimeter of the square?",
        "free_form",
        "Each side is 3 cm, and a square has four sides, so 4 x 3 = 12. So the perimeter is 12 cm.",
        "12",
    ),
    (
        "Which shape is largest?\n(A) circle\n(B) square",
        CHOICE,
        "Comparing them, the square covers more area than the circle, so B is my pick.",
        "B",
    ),
)


@dataclass(frozen=True)
class JudgeRequest:
    """What the judge reads about one answer."""

    question: str
    """The benchmark prompt (options included)."""
    response: str
    """The model's full response."""
    kind: str
    """``choice``, ``yes_no`` or ``free_form``: the form of the answer asked for."""


def judge_messages(request: JudgeRequest, max_response_chars: int) -> list[dict[str, str]]:
    """The chat messages for one request; a long response keeps its end, where the answer is."""

    def task(question: str, kind: str, response: str) -> str:
        return (
            f"Question:\n{question.replace(IMAGE_SLOT, '').strip()}\n\nResponse:\n{response.strip()}\n\n"
            f"Reply with {_FORMS.get(kind, _FORMS['free_form'])} only; "
            f"reply {NO_ANSWER} if the response gives no final answer."
        )

    response = request.response
    if len(response) > max_response_chars:
        response = "..." + response[-max_response_chars:]
    messages = [{"role": "system", "content": _SYSTEM}]
    for question, kind, text, answer in _EXAMPLES:
        messages += [{"role": "user", "content": task(question, kind, text)}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": task(request.question, request.kind, response)}]


class JudgeUnavailable(EndpointError):
    """The endpoint cannot be used at all (unreachable, unauthorised, unknown model)."""


class AnswerJudge:
    """Read final answers out of responses with a chat model behind an OpenAI-compatible endpoint.

    Args:
        model: Model name sent to the endpoint (e.g. ``gpt-4o-mini``, or the name a local server gives its model).
        base_url: The endpoint's base URL, up to and including ``/v1`` (``http://localhost:30000/v1`` for a
            local server).
        api_key_env: Environment variable holding the API key (sent as a Bearer token); null or unset = no key.
        mode: ``fallback`` = judge only answers the rules scored wrong; ``always`` = the judge's reading decides
            every answer.
        benchmarks: Benchmark names to judge; null = every benchmark of the run.
        cache: JSONL file of earlier judge replies (read, then appended to); null = no cache.
        max_workers: Requests in flight at once.
        timeout_s: Seconds to wait for one reply.
        retries: Extra attempts for a failed request (back-off 1, 2, 4, ... s).
        max_tokens: Longest judge reply in tokens.
        max_response_chars: Longer responses are cut to their last this many characters.
    """

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        mode: Literal["fallback", "always"] = "fallback",
        benchmarks: list[str] | None = None,
        cache: str | None = None,
        max_workers: int = 8,
        timeout_s: float = 60.0,
        retries: int = 3,
        max_tokens: int = 32,
        max_response_chars: int = 12000,
    ) -> None:
        if mode not in ("fallback", "always"):
            raise ValueError(f"AnswerJudge.mode={mode!r}: not a judge mode. Use one of 'fallback', 'always'.")
        if max_workers < 1:
            raise ValueError(f"AnswerJudge.max_workers={max_workers!r}: must be >= 1. Use e.g. 8 parallel requests.")
        if retries < 0:
            raise ValueError(f"AnswerJudge.retries={retries!r}: must be >= 0. Use 0 to try each request once.")
        if timeout_s <= 0:
            raise ValueError(f"AnswerJudge.timeout_s={timeout_s!r}: must be > 0 seconds. Use e.g. 60.")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"AnswerJudge.base_url={base_url!r}: must start with http:// or https://. "
                "Give the API root, e.g. https://api.openai.com/v1."
            )
        self.model, self.base_url, self.api_key_env = model, base_url.rstrip("/"), api_key_env
        self.mode, self.benchmarks, self.cache = mode, benchmarks, cache
        self.max_workers, self.timeout_s, self.retries = max_workers, timeout_s, retries
        self.max_tokens, self.max_response_chars = max_tokens, max_response_chars
        self._memory: dict[str, str] | None = None
        # the HTTP part (probe, timeout, retries with back-off 1, 2, 4, ... s) is the one teacher annotation uses
        endpoint = ChatEndpoint(
            model, base_url, api_key_env, max_workers, timeout_s, retries, backoff_s=1.0, max_tokens=max_tokens
        )
        self._client = ChatClient(endpoint, role="judge")
        self._rank = 0  # under several processes each writes its own cache file (see ``for_rank``)

    def for_rank(self, rank: int, world_size: int) -> None:
        """Under several processes, process ``rank`` appends to ``<cache stem>.rank<k><suffix>`` and reads them all."""
        self._rank = rank if world_size > 1 else 0

    def applies_to(self, name: str) -> bool:
        return self.benchmarks is None or name in self.benchmarks

    # ------------------------------------------------------------------------------------- requests
    def extract(self, requests: Sequence[JudgeRequest]) -> list[str | None]:
        """The judge's answer per request: a string, ``NO_ANSWER`` when it found none, None when the request failed."""
        messages = [judge_messages(r, self.max_response_chars) for r in requests]
        keys = [self._key(m) for m in messages]
        known = self._load_cache()
        todo = {k: m for k, m in zip(keys, messages) if k not in known}
        if todo:
            self._check_endpoint()
            with ThreadPoolExecutor(self.max_workers) as pool:
                answers = pool.map(self._ask, todo.values())
                # disable=None: a bar on a terminal only (not in CI logs or captured output)
                replies = dict(
                    zip(todo, tqdm(answers, total=len(todo), desc=f"judge {self.model}", disable=None, leave=False))
                )
            fresh = {k: v for k, v in replies.items() if v is not None}
            known.update(fresh)
            self._append_cache(fresh)
        return [known.get(k) for k in keys]

    def _key(self, messages: list[dict[str, str]]) -> str:
        payload = json.dumps([self.model, messages], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def _check_endpoint(self) -> None:
        """One probe up front, so that a wrong URL, key or model name is one clear error, not N failed rows."""
        try:
            self._client.check()
        except EndpointError as e:
            raise JudgeUnavailable(f"{e} Remove `judge` to score with the rules only.") from None

    def _ask(self, messages: list[dict[str, str]]) -> str | None:
        try:
            return _reply_text(self._client.chat(messages, temperature=0).text)
        except RequestFailed:
            return None

    # ---------------------------------------------------------------------------------------- cache
    def _load_cache(self) -> dict[str, str]:
        if self._memory is None:
            self._memory = {}
            base = Path(self.cache) if self.cache else None
            for path in [base, *shard_paths(base)] if base else []:
                for n, line in complete_lines(path)[0]:  # a torn last line (a crash mid-write) is asked again
                    try:
                        entry = json.loads(line)
                        self._memory[entry["key"]] = str(entry["answer"])
                    except (ValueError, KeyError, TypeError):
                        raise ValueError(
                            f"{path}:{n}: not a judge cache line; delete the file to start over."
                        ) from None
        return self._memory

    def _append_cache(self, entries: dict[str, str]) -> None:
        if not self.cache or not entries:
            return
        base = Path(self.cache)  # process 0 appends to the file itself, the others to their shards
        handle, _ = open_shard(shard_path(base, self._rank) if self._rank else base)  # cuts a torn tail
        with handle:
            append_rows(handle, ({"key": k, "answer": v} for k, v in entries.items()))


def _reply_text(text: str) -> str:
    """The reply text stripped of quotes and a trailing full stop."""
    return text.strip().rstrip(".").strip().strip("`\"'").strip() or NO_ANSWER


def judge_rows(judge: AnswerJudge, bench: Benchmark, rows: list[dict[str, Any]], items: list[BenchmarkItem]) -> None:
    """Re-grade ``rows`` (scored by ``bench.score``, one per item) with the judge's readings; in place.

    Each judged row gains ``judge_answer`` (None when the request failed) and ``rule_correct`` (the
    rules' verdict before the judge); ``correct`` and ``prediction`` follow the judge's reading,
    graded by the benchmark's rules.
    """
    chosen = [(row, item) for row, item in zip(rows, items) if judge.mode == "always" or not row["correct"]]
    answers = judge.extract([JudgeRequest(item.problem, row["response"], item.kind) for row, item in chosen])
    for (row, item), answer in zip(chosen, answers):
        row["judge_answer"], row["rule_correct"] = answer, bool(row["correct"])
        if answer is None:
            continue
        if answer.upper() == NO_ANSWER:
            scored: dict[str, Any] = {"prediction": "", "correct": False}
        else:
            scored = bench.score(_as_answer(answer, item), item)
        row.update({k: v for k, v in scored.items() if k in ("prediction", "choice", "correct")})


def judge_stats(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Over rows ``judge_rows`` saw: ``rule_accuracy`` (the rules' verdicts, before the judge), and counts:
    ``judged`` (requests), ``judge_failed``, ``judge_no_answer``, ``judge_flipped`` (verdicts the judge changed)."""
    judged = [r for r in rows if "judge_answer" in r]
    rule = [r.get("rule_correct", r["correct"]) for r in rows]
    return {
        "rule_accuracy": sum(map(bool, rule)) / len(rule) if rule else None,
        "judged": len(judged),
        "judge_failed": sum(r["judge_answer"] is None for r in judged),
        "judge_no_answer": sum(
            r["judge_answer"] is not None and r["judge_answer"].upper() == NO_ANSWER for r in judged
        ),
        "judge_flipped": sum(bool(r["correct"]) != r["rule_correct"] for r in judged),
    }


def _as_answer(answer: str, item: BenchmarkItem) -> str:
    """A judged letter stays a letter for choice items; anything else is graded as the text it is."""
    if item.kind == CHOICE and len(answer) == 1 and answer.upper() in LETTERS:
        return answer.upper()
    return answer
