"""A local stand-in for an OpenAI-compatible ``/v1/chat/completions`` server, for judge tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers.http_json import send_json


class JudgeServer:
    """Serves ``reply(last_user_message) -> str | int`` (an int is an HTTP error status) on localhost.

    ``requests`` records every request body, ``headers`` every request's headers, in arrival order.
    """

    def __init__(self, reply: Callable[[str], str | int]) -> None:
        self.reply, self.requests, self.headers = reply, [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return send_json(self, 404, {"error": "not found"})
                out = server.reply(body["messages"][-1]["content"])
                if isinstance(out, int):
                    return send_json(self, out, {"error": "stub error"})
                send_json(self, 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": out}}]})

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def graded(self) -> list[str]:
        """The last user message of every request but the endpoint check ("Reply with OK.")."""
        return [r["messages"][-1]["content"] for r in self.requests if r["messages"][-1]["content"] != "Reply with OK."]
