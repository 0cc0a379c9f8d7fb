"""A local OpenAI-format stand-in for a teacher model: answers by callback, fails, hangs, sends malformed JSON.

A sibling of ``judge_server`` for the annotation tests: it also serves ``GET /v1/models``, checks a
Bearer key and reports token ``usage``. The callback gets the request body and returns the reply text,
an int (that HTTP error status), ``HANG`` (sleep ``hang_s``, then close without a reply: a client
timeout) or ``MALFORMED`` (a 200 whose body is not JSON).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers.http_json import send_json

HANG = object()
MALFORMED = object()


def user_text(body: dict[str, Any]) -> str:
    """The text parts of a request's last user message, joined."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


class TeacherServer:
    """Serves ``reply(body)`` on localhost; ``chats`` records every chat body but the probe's, in arrival order."""

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], Any],
        models: tuple[str, ...] = ("teacher",),
        key: str | None = None,
        hang_s: float = 2.0,
    ) -> None:
        self.reply, self.models, self.key, self.hang_s = reply, models, key, hang_s
        self.chats: list[dict[str, Any]] = []
        self.probes = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _authorised(self) -> bool:
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    send_json(self, 401, {"error": {"message": "invalid api key"}})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with server._lock:
                    server.probes += 1
                if not self._authorised():
                    return
                if self.path != "/v1/models":
                    return send_json(self, 404, {"error": "not found"})
                send_json(self, 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self._authorised():
                    return
                if self.path != "/v1/chat/completions":
                    return send_json(self, 404, {"error": "not found"})
                if body.get("model") not in server.models:
                    return send_json(self, 404, {"error": {"message": f"model {body.get('model')} not found"}})
                with server._lock:
                    server.chats.append(body)
                out = server.reply(body)
                if out is HANG:
                    time.sleep(server.hang_s)
                    return  # the client gave up long ago; answering would only hit a closed socket
                if out is MALFORMED:
                    data = b"{not json"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if isinstance(out, int):
                    return send_json(self, out, {"error": {"message": "stub error"}})
                usage = {"prompt_tokens": 10, "completion_tokens": len(out.split()), "total_tokens": 0}
                message = {"role": "assistant", "content": out}
                send_json(self, 200, {"choices": [{"index": 0, "message": message}], "usage": usage})

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> TeacherServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
