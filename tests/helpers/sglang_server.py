"""A stand-in for sglang's native HTTP server on 127.0.0.1, and outputs in its documented shape."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.helpers.http_json import send_json

EOS, PAD = 2, 0  # the tiny tokenizer's <|im_end|> and <|endoftext|>


class FakeSGLang:
    """sglang's native HTTP API as documented, on 127.0.0.1: /generate and /update_weights_from_disk.

    Serves at most ``max_requests`` requests and shuts itself down after ``lifetime_s`` at the latest.
    """

    def __init__(self, reply: Callable[[dict], list], max_requests: int = 20, lifetime_s: float = 60.0) -> None:
        self.reply = reply
        self.requests: list[tuple[str, dict]] = []
        self.hang_s = 0.0
        self.update_ok = True
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, body))
                time.sleep(fake.hang_s)
                if len(fake.requests) > max_requests:
                    status, answer = 503, {"error": "request budget spent"}
                elif self.path == "/generate":
                    status, answer = 200, fake.reply(body)
                elif self.path == "/update_weights_from_disk":
                    ok = fake.update_ok and (Path(body["model_path"]) / "config.json").is_file()
                    message = (
                        "Succeeded to update model weights." if ok else "Failed to get weights iterator: no weights."
                    )
                    status, answer = (200 if ok else 400), {"success": ok, "message": message, "num_paused_requests": 0}
                else:
                    status, answer = 404, {"error": f"no route {self.path}"}
                send_json(self, status, answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # a handler still sleeping in a timeout test must not block shutdown
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._stopper = threading.Timer(lifetime_s, self.stop)
        self._stopper.daemon = True
        self._stopper.start()

    def stop(self) -> None:
        self._stopper.cancel()
        self.server.shutdown()
        self.server.server_close()


def sglang_output(
    ids: list[int], finish: dict, logprobs: list[float] | None = None, prompt_tokens: int | None = None
) -> dict:
    """One output in sglang's documented shape."""
    meta: dict[str, Any] = {"finish_reason": finish, "completion_tokens": len(ids)}
    if prompt_tokens is not None:
        meta["prompt_tokens"] = prompt_tokens
    if logprobs is not None:
        meta["output_token_logprobs"] = [[lp, t, None] for lp, t in zip(logprobs, ids)]
    return {"text": "", "output_ids": ids, "meta_info": meta}


def stop_finish() -> dict:
    return {"type": "stop", "matched": EOS}


def scripted_reply(body: dict) -> list:
    """Row k: k + 1 text tokens then <|im_end|>, except every third row runs out of tokens."""
    outputs = []
    for k, ids in enumerate(body["input_ids"]):
        tokens = [40 + j for j in range(k + 1)]
        if k % 3 == 2:
            outputs.append(
                sglang_output(tokens, {"type": "length", "length": len(tokens)}, [-0.5] * len(tokens), len(ids))
            )
        else:
            outputs.append(sglang_output(tokens + [EOS], stop_finish(), [-0.5] * (len(tokens) + 1), len(ids)))
    return outputs


@contextmanager
def fake_sglang_servers() -> Iterator[Callable[..., FakeSGLang]]:
    """``start(reply)`` starts a FakeSGLang answering /generate with ``reply(body)``; all stop on exit."""
    servers: list[FakeSGLang] = []

    def start(reply: Callable[[dict], list] = lambda body: []) -> FakeSGLang:
        servers.append(FakeSGLang(reply))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
