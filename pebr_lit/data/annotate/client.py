"""A chat client for any OpenAI-compatible ``/v1/chat/completions`` endpoint: probe, timeout, retries, usage.

``ChatEndpoint`` is the endpoint's settings (annotation's ``--teacher`` group); ``ChatClient.chat`` sends one
request and retries what may pass on a second try (timeouts, refused connections, HTTP 408/429/5xx,
replies that are not the OpenAI JSON shape) with exponential back-off, then raises ``RequestFailed``
with the last reason, so a caller counts the failure instead of losing it. ``ChatClient.check`` probes
the endpoint once (``GET /models``, else a 1-token request) so that a wrong URL, key or model name is
one clear ``EndpointError`` before any work. Shared by teacher annotation (``annotate.run``) and the
evaluation judge (``eval.judge``); ``role`` names the config group in error messages.

Left out on purpose: what is asked (``annotate.tasks``), caching and concurrency (``annotate.run``),
streaming, and any HTTP library beyond ``urllib``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

#: HTTP statuses worth a second try: timeout, rate limit, server errors.
RETRIABLE = (408, 409, 429, 500, 502, 503, 504)


@dataclass
class ChatEndpoint:
    """A chat model behind an OpenAI-compatible endpoint (a local sglang/vLLM server or a hosted API)."""

    model: str
    """Model name sent to the endpoint (e.g. ``gpt-4o``, or the name a local server gives its model)."""
    base_url: str = "http://localhost:30000/v1"
    """The endpoint's base URL, up to and including ``/v1``."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Environment variable holding the API key (sent as a Bearer token); null or unset = no key."""
    max_workers: int = 8
    """Requests in flight at once."""
    timeout_s: float = 120.0
    """Seconds to wait for one reply."""
    retries: int = 4
    """Extra attempts for a failed request (back-off ``backoff_s`` x 1, 2, 4, ...)."""
    backoff_s: float = 2.0
    """First back-off in seconds (a 429's Retry-After is honoured when longer, up to 60 s)."""
    max_tokens: int = 1024
    """Longest reply in tokens."""
    temperature: float = 0.0
    """Sampling temperature of the first try (rejection-sampling retries use ``retry_temperature``)."""
    retry_temperature: float = 0.7
    """Sampling temperature of the 2nd, 3rd, ... try of a rejected warm-up answer."""

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"teacher.base_url={self.base_url!r}: must start with http:// or https://. "
                "Give the API root, e.g. http://localhost:30000/v1."
            )
        for name, low in (("max_workers", 1), ("retries", 0), ("max_tokens", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"teacher.{name}={getattr(self, name)!r}: must be >= {low}.")
        for name in ("timeout_s", "backoff_s"):
            if getattr(self, name) < 0 or (name == "timeout_s" and self.timeout_s == 0):
                raise ValueError(f"teacher.{name}={getattr(self, name)!r}: must be > 0 seconds.")
        self.base_url = self.base_url.rstrip("/")


class EndpointError(RuntimeError):
    """The endpoint cannot be used at all (unreachable, unauthorised, unknown model): fix the config."""


class RequestFailed(RuntimeError):
    """One request failed on every try; ``reason`` is a short category for the summary."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Reply:
    """One chat completion's text and its token counts (0 when the server sends no ``usage``)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatClient:
    """Send chat requests to ``teacher``'s endpoint; thread-safe (one ``urllib`` request per call).

    ``role``: the config group named in error messages (``teacher``, ``judge``)."""

    def __init__(self, teacher: ChatEndpoint, role: str = "teacher") -> None:
        self.teacher, self.role = teacher, role
        self.requests = 0  # HTTP requests sent, retries and the probe included
        self.retried = 0
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._checked, self._error = False, None  # type: bool, EndpointError | None

    # ------------------------------------------------------------------------------------------ HTTP
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        env = self.teacher.api_key_env
        key = os.environ.get(env) if env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _send(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.teacher.base_url}{path}", data, self._headers())
        with self._lock:
            self.requests += 1
        with urllib.request.urlopen(req, timeout=self.teacher.timeout_s) as reply:
            return json.loads(reply.read())

    # ----------------------------------------------------------------------------------------- probe
    def check(self) -> None:
        """Probe the endpoint once (later calls return at once, or raise the same error); ``EndpointError``
        says what to fix. Threads calling at once wait for one probe."""
        with self._check_lock:
            if self._error is not None:
                raise self._error
            if not self._checked:
                try:
                    self._probe()
                except EndpointError as e:
                    self._error = e
                    raise
                self._checked = True

    def _probe(self) -> None:
        t, r = self.teacher, self.role
        where = f"{r} endpoint {t.base_url}"
        fix = f"Check {r}.base_url, {r}.model and the key in ${t.api_key_env}"
        try:
            listing = self._send("/models")
            names = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
            if names and t.model not in names:
                raise EndpointError(
                    f"{where} serves no model {t.model!r} (it serves {', '.join(map(str, names[:10]))}). "
                    f"Set {r}.model to one of them."
                )
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise EndpointError(f"{where} refused the key: HTTP {e.code} {e.reason}. {fix}.") from None
            self._probe_chat(where, fix)  # no /models route (some servers): one 1-token request instead
        except (urllib.error.URLError, OSError) as e:
            raise EndpointError(f"{where} unreachable ({e}). {self.unreachable_fix}") from None
        except (ValueError, AttributeError):
            self._probe_chat(where, fix)

    @property
    def unreachable_fix(self) -> str:
        return f"Start the {self.role} server or fix {self.role}.base_url."

    def _probe_chat(self, where: str, fix: str) -> None:
        body = {"model": self.teacher.model, "messages": [{"role": "user", "content": "Reply with OK."}]}
        try:
            self._send("/chat/completions", {**body, "max_tokens": 1, "temperature": 0})
        except urllib.error.HTTPError as e:
            if e.code in (400, 401, 403, 404):
                model = self.teacher.model
                raise EndpointError(f"{where} refused model {model!r}: HTTP {e.code} {e.reason}. {fix}.") from None
        except (urllib.error.URLError, OSError) as e:
            raise EndpointError(f"{where} unreachable ({e}). {self.unreachable_fix}") from None

    # ------------------------------------------------------------------------------------------ chat
    def chat(self, messages: list[dict[str, Any]], temperature: float | None = None) -> Reply:
        """One completion; retried on what may pass later, then ``RequestFailed`` with the last reason."""
        t = self.teacher
        body = {
            "model": t.model,
            "messages": messages,
            "max_tokens": t.max_tokens,
            "temperature": t.temperature if temperature is None else temperature,
        }
        reason, detail = "", ""
        for attempt in range(t.retries + 1):
            wait = t.backoff_s * 2**attempt * (1 + 0.25 * random.random())  # jitter: retries do not come in waves
            try:
                return _reply(self._send("/chat/completions", body))
            except urllib.error.HTTPError as e:
                reason, detail = f"http_{e.code}", f"HTTP {e.code} {e.reason}"
                if e.code not in RETRIABLE:
                    break  # a bad request stays bad (too large an image, a refused prompt)
                after = e.headers.get("Retry-After") if e.headers else None
                if after and after.replace(".", "", 1).isdigit():
                    wait = max(wait, min(float(after), 60.0))
            except TimeoutError as e:
                reason, detail = "timeout", f"no reply within {t.timeout_s} s ({e})"
            except urllib.error.URLError as e:
                is_timeout = isinstance(e.reason, TimeoutError)
                reason, detail = ("timeout" if is_timeout else "connection"), str(e.reason)
            except OSError as e:
                reason, detail = "connection", str(e)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                reason, detail = "malformed_reply", f"not an OpenAI chat completion ({type(e).__name__}: {e})"
            if attempt < t.retries:
                with self._lock:
                    self.retried += 1
                time.sleep(wait)
        raise RequestFailed(reason, detail)


def _reply(payload: Any) -> Reply:
    """The first choice's text and the usage counts; ``ValueError`` etc. for anything else."""
    text = payload["choices"][0]["message"]["content"]
    if not isinstance(text, str):
        raise TypeError("message content is not text")
    usage = payload.get("usage") or {}
    return Reply(text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
