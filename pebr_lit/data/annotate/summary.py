"""The annotation run's summary: written / rejected / failed with reasons, requests, tokens and time.

Left out on purpose: what a task asks (``annotate.tasks``) and printing progress (``annotate.run``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Outcome:
    """What one record's annotation gave: the fields filled, rejected tries, failures and the cost."""

    qid: str
    fields: dict[str, Any] = field(default_factory=dict)
    """Filled record fields (``description``, ``key_words``, ``response``)."""
    rejected_tries: list[str] = field(default_factory=list)
    """Why each rejected warm-up answer was rejected (``bad_format``, ``wrong_answer``), in try order."""
    rejected: bool = False
    """True when every try of the warm-up answer was rejected (no ``response`` kept)."""
    failures: list[dict[str, str]] = field(default_factory=list)
    """``{"task", "reason", "detail"}`` per failed request or unreadable image; a failed record is redone next run."""
    sent: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_row(self) -> dict[str, Any]:
        keep = ("qid", "fields", "rejected_tries", "rejected", "prompt_tokens", "completion_tokens")
        return {k: getattr(self, k) for k in keep}


@dataclass
class Summary:
    """Counts over a run; ``add`` one outcome at a time."""

    records: int = 0
    resumed: int = 0
    written: int = 0
    rejected: int = 0
    rejected_tries: Counter = field(default_factory=Counter)
    failed: int = 0
    failure_reasons: Counter = field(default_factory=Counter)
    failed_examples: list[dict[str, str]] = field(default_factory=list)
    filled: Counter = field(default_factory=Counter)
    requests_sent: int = 0
    http_requests: int = 0
    retried: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.requests_sent += outcome.sent
        self.cached += outcome.cached
        self.prompt_tokens += outcome.prompt_tokens
        self.completion_tokens += outcome.completion_tokens
        self.rejected_tries.update(outcome.rejected_tries)
        if outcome.failures:
            self.failed += 1
            for failure in outcome.failures:
                self.failure_reasons[f"{failure['task']}:{failure['reason']}"] += 1
            if len(self.failed_examples) < 20:
                self.failed_examples.append({"qid": outcome.qid, **outcome.failures[0]})
            return
        self.rejected += outcome.rejected
        self.filled.update(outcome.fields.keys())  # counts per field name

    def as_dict(self) -> dict[str, Any]:
        out = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in vars(self).items()}
        out["completion_tokens_per_s"] = round(self.completion_tokens / self.seconds, 1) if self.seconds else None
        return out

    def line(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.failure_reasons.items())) or "none"
        return (
            f"annotate: {self.records} records | written {self.written} ({self.resumed} from an earlier run) | "
            f"warm-up answers rejected {self.rejected} (tries rejected {sum(self.rejected_tries.values())}) | "
            f"failed {self.failed} ({reasons}) | requests {self.requests_sent} sent, {self.cached} from cache, "
            f"{self.retried} retries | tokens {self.prompt_tokens} in, {self.completion_tokens} out | "
            f"{self.seconds:.1f} s"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path
