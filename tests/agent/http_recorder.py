"""A tiny local HTTP server standing in for the service's card-reads endpoint: it records every
request and answers from a script (default: 201 with a fresh id)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[tuple[int, bytes]] = []
        self.arrived = threading.Event()
        self.url = ""

    def answer(self, *responses: tuple[int, Any]) -> None:
        """Queue answers: (status, JSON-able body or raw bytes)."""
        for status, body in responses:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.script.append((status, raw))

    def _next(self) -> tuple[int, bytes]:
        if self.script:
            return self.script.pop(0)
        return 201, json.dumps({"id": f"read-{len(self.requests)}"}).encode()


@contextmanager
def recording_server() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            recorder.requests.append(
                Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status, raw = recorder._next()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            recorder.arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
