"""The annotation run: records in, teacher requests in a bounded thread pool, cached and resumable, records out.

For each record the tasks run in order (``description``, then ``keywords`` from it, then ``response``);
records run ``teacher.max_workers`` at a time. Every teacher reply is appended to a cache
(``<out>/cache.jsonl`` by default) keyed by the model, the messages, the sampling settings and the try,
so a rerun (or another run sharing the cache) pays nothing twice. Each finished record is appended to
``<out>/progress.rank0.jsonl`` through ``data.shards`` (a torn last line, from a kill mid-write, is
cut and that record redone): a crashed run starts again where it stopped, with no record twice and none
lost. A record whose request failed on every retry (or whose image cannot be read) is counted with its
reason, written without that field and redone by the next run. At the end ``<out>/records.jsonl``
holds every input record in input order, with the fields filled and everything else kept, and
``<out>/summary.json`` the counts; with the ``response`` task, ``<out>/sft.jsonl`` holds only the
records with a kept warm-up answer (the SFT set).

Left out on purpose: the HTTP client (``annotate.client``), the prompts (``annotate.tasks``), and
several processes (one process drives many requests; a shard per process would be a small step).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pebr_lit.data.annotate.client import ChatClient, ChatEndpoint, RequestFailed
from pebr_lit.data.annotate.images import image_data_url
from pebr_lit.data.annotate.keywords import yake_keywords
from pebr_lit.data.annotate.summary import Outcome, Summary
from pebr_lit.data.annotate.tasks import (
    Prompts,
    check_response,
    description_messages,
    keywords_messages,
    parse_description,
    parse_keywords,
    response_messages,
)
from pebr_lit.data.records import Record, load_records, write_records
from pebr_lit.data.shards import append_rows, complete_lines, open_shard, shard_path, shard_paths
from pebr_lit.data.sources import RecordError


class ReplyCache:
    """Teacher replies by request key, read from a JSONL file and its shards, appended as they come (thread-safe)."""

    def __init__(self, path: Path | None) -> None:
        self.path, self._lock, self._handle = path, threading.Lock(), None
        self.entries: dict[str, dict[str, Any]] = {}
        for file in [path, *shard_paths(path)] if path else []:
            for n, line in complete_lines(file)[0]:
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry["reply"]
                except (ValueError, KeyError, TypeError):
                    raise ValueError(f"{file}:{n}: not a teacher cache line. Delete the file to start over.") from None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self.entries.get(key)

    def put(self, key: str, reply: dict[str, Any]) -> None:
        with self._lock:
            self.entries[key] = reply
            if self.path is None:
                return
            if self._handle is None:
                self._handle, _ = open_shard(self.path)
            append_rows(self._handle, [{"key": key, "reply": reply}])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class Annotator:
    """Annotate one record at a time (``__call__``); thread-safe, shares one client and one cache."""

    def __init__(
        self,
        client: ChatClient | None,
        cache: ReplyCache,
        prompts: Prompts,
        tasks: Sequence[str],
        max_tries: int = 4,
        image_max_side: int | None = 1024,
        max_keywords: int = 12,
        keywords_from: str = "teacher",
        response_qids: set[str] | None = None,
    ) -> None:
        self.client, self.cache, self.prompts, self.tasks = client, cache, prompts, tuple(tasks)
        self.max_tries, self.image_max_side, self.max_keywords = max_tries, image_max_side, max_keywords
        self.keywords_from, self.response_qids = keywords_from, response_qids
        self._asking: dict[str, threading.Lock] = {}  # one lock per request in flight
        self._asking_lock = threading.Lock()

    def key(self, messages: list[dict[str, Any]], temperature: float, attempt: int) -> str:
        t = self.client.teacher if self.client else None
        payload = [t.model if t else None, messages, temperature, t.max_tokens if t else None, attempt]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def ask(self, outcome: Outcome, messages: list[dict[str, Any]], temperature: float, attempt: int = 0) -> str:
        """The reply to one request, from the cache or the teacher. Two records asking the same thing at once
        (the same description's keywords) send it once: the second waits for the first's reply."""
        key = self.key(messages, temperature, attempt)
        with self._asking_lock:
            lock = self._asking.setdefault(key, threading.Lock())
        try:
            with lock:
                return self._ask(outcome, key, messages, temperature)
        finally:
            with self._asking_lock:
                self._asking.pop(key, None)

    def _ask(self, outcome: Outcome, key: str, messages: list[dict[str, Any]], temperature: float) -> str:
        hit = self.cache.get(key)
        if hit is not None:
            outcome.cached += 1
            return hit["text"]
        assert self.client is not None, "a teacher task without a teacher"
        self.client.check()  # once per run, before the first request: a bad config is one clear error
        reply = self.client.chat(messages, temperature)
        outcome.sent += 1
        outcome.prompt_tokens += reply.prompt_tokens
        outcome.completion_tokens += reply.completion_tokens
        entry = {"text": reply.text, "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens}
        self.cache.put(key, entry)
        return reply.text

    def messages_for(self, record: Record) -> list[dict[str, Any]]:
        """The first request this record would send (for ``--dry-run``)."""
        urls = [image_data_url(ref, self.image_max_side) for ref in record.images]
        if "description" in self.tasks:
            return description_messages(record.problem, urls, self.prompts)
        if "keywords" in self.tasks and self.keywords_from == "teacher":
            return keywords_messages(record.description or "", self.max_keywords, self.prompts)
        return response_messages(record.problem, urls, self.prompts)

    def __call__(self, record: Record) -> Outcome:
        outcome, task = Outcome(record.qid), "image"
        t = self.client.teacher if self.client else None
        try:
            urls = [image_data_url(ref, self.image_max_side) for ref in record.images]
            description = record.description
            if "description" in self.tasks:
                task = "description"
                messages = description_messages(record.problem, urls, self.prompts)
                description = parse_description(self.ask(outcome, messages, t.temperature))
                outcome.fields["description"] = description
            if "keywords" in self.tasks:
                task = "keywords"
                if not description:
                    raise ValueError("no description to take keywords from: add the description task")
                if self.keywords_from == "yake":
                    words = yake_keywords(description, self.max_keywords)
                else:
                    messages = keywords_messages(description, self.max_keywords, self.prompts)
                    reply = self.ask(outcome, messages, t.temperature)
                    words = parse_keywords(reply, self.max_keywords)
                outcome.fields["key_words"] = words
            if "response" in self.tasks and (self.response_qids is None or record.qid in self.response_qids):
                task = "response"
                messages = response_messages(record.problem, urls, self.prompts)
                for attempt in range(self.max_tries):
                    temperature = t.temperature if attempt == 0 else t.retry_temperature
                    text = self.ask(outcome, messages, temperature, attempt)
                    why = check_response(text, record.answer)
                    if why is None:
                        outcome.fields["response"] = text.strip()
                        break
                    outcome.rejected_tries.append(why)
                else:
                    outcome.rejected = True
        except RequestFailed as e:
            outcome.failures.append({"task": task, "reason": e.reason, "detail": e.detail})
        except (OSError, ValueError) as e:  # an unreadable image, an empty or unparsable reply
            reason = "unreadable_image" if task == "image" else "bad_reply"
            outcome.failures.append({"task": task, "reason": reason, "detail": str(e)})
        return outcome


def load_done(progress: Path) -> dict[str, dict[str, Any]]:
    """Finished records of earlier runs by qid (a torn last line is not finished)."""
    done: dict[str, dict[str, Any]] = {}
    for file in [progress, *shard_paths(progress)]:
        for n, line in complete_lines(file)[0]:
            try:
                row = json.loads(line)
                done[str(row["qid"])] = row
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{file}:{n}: not an annotation progress line. Delete the file to annotate from scratch."
                ) from None
    return done


def run_bounded(pool: ThreadPoolExecutor, fn: Any, items: Sequence[Record], window: int) -> Iterator[Future]:
    """Submit at most ``window`` items at a time (so 50,000 records are not 50,000 futures); yield each as done."""
    pending: set[Future] = set()
    it = iter(items)
    for item in it:
        pending.add(pool.submit(fn, item))
        if len(pending) >= window:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from finished
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from finished


def read_records(files: Sequence[str | Path], image_root: str | None, limit: int | None) -> list[Record]:
    """Every record of ``files`` in order (the project's loader: a bad row is an error naming file, row, field)."""
    records: list[Record] = []
    first: dict[str, str] = {}
    for file in files:
        for record in load_records(file, image_root=image_root):
            if record.qid in first:
                raise RecordError(
                    record.source,
                    f"duplicate qid {record.qid!r} (first at {first[record.qid]})",
                    "Give every record a unique qid",
                    "qid",
                )
            first[record.qid] = record.source
            records.append(record)
    return records[:limit] if limit is not None else records


def merged(record: Record, fields: dict[str, Any]) -> Record:
    """The record with the annotated fields set (``key_words`` as a tuple), everything else kept."""
    values = {k: (tuple(v) if k == "key_words" else v) for k, v in fields.items()}
    return replace(record, **values)


def annotate_all(
    records: list[Record], out: Path, annotator: Annotator, summary: Summary, workers: int, progress_bar: bool = True
) -> Path:
    """Annotate what earlier runs left, append each finished record to the progress shard, write the outputs."""
    out.mkdir(parents=True, exist_ok=True)
    progress = out / "progress.jsonl"
    done = load_done(progress)
    other = next((row for row in done.values() if row.get("tasks") != list(annotator.tasks)), None)
    if other is not None:  # resuming with other tasks would silently leave the new fields unfilled
        raise ValueError(
            f"{progress.parent}: an earlier run here annotated tasks {other.get('tasks')}, this one asks "
            f"{list(annotator.tasks)}. Give this run another --out (the reply cache can be shared with --cache), "
            "or rerun with the earlier tasks."
        )
    todo = [r for r in records if r.qid not in done]
    summary.records, summary.resumed = len(records), len(records) - len(todo)
    start = time.monotonic()
    handle, _ = open_shard(shard_path(progress, 0))  # cuts a torn tail left by a kill mid-write
    bar = tqdm(total=len(todo), desc="annotate", unit="rec", disable=None if progress_bar else True)
    try:
        with ThreadPoolExecutor(workers) as pool:
            for future in run_bounded(pool, annotator, todo, workers * 4):
                outcome = future.result()  # an EndpointError stops the run here; finished records are kept
                if not outcome.failures:
                    row = {**outcome.as_row(), "tasks": list(annotator.tasks)}
                    append_rows(handle, [row])
                    done[outcome.qid] = row
                summary.add(outcome)
                elapsed = max(time.monotonic() - start, 1e-9)
                bar.update(1)
                bar.set_postfix(
                    tok_in=summary.prompt_tokens,
                    tok_out=summary.completion_tokens,
                    tok_s=f"{summary.completion_tokens / elapsed:.0f}",
                    failed=summary.failed,
                    refresh=False,
                )
    finally:
        bar.close()
        handle.close()
        annotator.cache.close()
        summary.seconds = time.monotonic() - start
        if annotator.client is not None:
            summary.http_requests, summary.retried = annotator.client.requests, annotator.client.retried
    annotated = [merged(r, done[r.qid]["fields"] if r.qid in done else {}) for r in records]
    output = write_records(annotated, out / "records.jsonl")
    if "response" in annotator.tasks:  # SFTDataModule refuses a row without a target: the kept answers alone
        write_records([r for r in annotated if r.response], out / "sft.jsonl")
    summary.written = sum(r.qid in done for r in records)
    summary.write(out / "summary.json")
    return output


def make_client(teacher: ChatEndpoint | None) -> ChatClient | None:
    return ChatClient(teacher) if teacher is not None else None
