"""An HTTP proxy in front of the moto S3 server that injects the faults moto cannot.

Clients talk to the proxy; each request is read whole (``Expect: 100-continue`` and
chunked bodies included), then, by the plan of the test:

* forwarded to moto and its answer relayed (the default), after ``delay`` seconds if set
  (a slow server: the request is processed at once, the answer comes late);
* answered ``503`` with an S3 ``ServiceUnavailable`` error, without reaching moto;
* dropped: the connection is closed with no answer, either before moto sees the
  request (``drop_before``) or after moto processed it (``drop_after``: done, but the
  client cannot know).

``stop()`` closes the listening socket and every open connection, as a server that goes
away; ``start()`` listens on the same port again. Faults are taken in order from
:meth:`inject`, optionally only for requests that ``match``; ``log`` records what
happened to every request.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Action = Literal["forward", "503", "drop_before", "drop_after"]
#: Request headers that belong to one hop, not to the request.
_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length"}
_UNAVAILABLE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    b"<Message>Please reduce your request rate. (injected)</Message></Error>"
)


@dataclass
class Fault:
    action: Action
    count: int
    match: Callable[[str, str], bool]


class S3FaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        #: Seconds every forwarded answer waits before it is sent.
        self.delay = 0.0
        #: (method, path, what happened) for every request, in order.
        self.log: list[tuple[str, str, str]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    # the plan ---------------------------------------------------------------------------

    def inject(
        self,
        action: Action,
        *,
        count: int = 1,
        match: Callable[[str, str], bool] = lambda method, path: True,
    ) -> None:
        """The next ``count`` requests that ``match(method, path)`` get ``action``."""
        with self._lock:
            self._faults.append(Fault(action, count, match))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.delay = 0.0

    def seen(self, what: str) -> int:
        """How many requests got ``what`` (an action, or ``"forward"``)."""
        with self._lock:
            return sum(1 for _, _, outcome in self.log if outcome == what)

    def _decide(self, method: str, path: str) -> Action:
        with self._lock:
            action: Action = "forward"
            for fault in self._faults:
                if fault.count > 0 and fault.match(method, path):
                    fault.count -= 1
                    action = fault.action
                    break
            self.log.append((method, path, action))
            return action

    # running ----------------------------------------------------------------------------

    def start(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)


class _Handler(BaseHTTPRequestHandler):
    owner: S3FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive and ``100 Continue``, as S3 speaks

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        self.owner._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's own output only

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._body()
        action = self.owner._decide(self.command, self.path)
        if action == "503":
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_UNAVAILABLE)))
            self.end_headers()
            self.wfile.write(_UNAVAILABLE)
            return
        if action == "drop_before":
            self._drop()
            return
        status, reason, headers, answer = self._forward(body)
        if action == "drop_after":
            self._drop()
            return
        if self.owner.delay:
            time.sleep(self.owner.delay)
        self.send_response(status, reason)
        head = self.command == "HEAD"
        for name, value in headers:
            lower = name.lower()
            if lower in ("server", "date"):
                continue  # ``send_response`` wrote its own
            if lower not in _HOP or (head and lower == "content-length"):
                self.send_header(name, value)  # a HEAD answer keeps the object's length
        if not head:
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.owner.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            return response.status, response.reason, response.getheaders(), answer
        finally:
            connection.close()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
