"""A PostgreSQL proxy that cuts connections at chosen points of the wire protocol.

``TcpProxy`` (tests/tcp_proxy.py) plays a server that goes away; this one reads the
frontend messages (a type byte and a length, after the untyped startup) so that a test
can cut one connection exactly where it matters:

* ``before_commit``: the client sent ``COMMIT``; the proxy drops it and the connection,
  so the server rolls the transaction back and the client never learns how it ended;
* ``after_commit``: the server answered ``COMMIT`` (a ``CommandComplete`` with that tag);
  the proxy drops the answer and the connection, so the transaction is committed and the
  client never learns it. A client that retries must find its own write done;
* ``chaos``: any frontend message may be the last, with probability ``rate``: cuts
  land at random points of transactions (before, inside, at the commit).

``SSLRequest`` and ``GSSENCRequest`` are answered ``N`` by the proxy itself, so the
session stays readable even when the server offers TLS. A cut closes both sockets: the
server sees the client vanish, the client a lost connection.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from typing import Literal

from tcp_proxy import TcpProxy

#: Startup-phase request codes (no type byte) that a server answers with one byte.
_NEGOTIATION_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest
#: ``CommandComplete`` (``C``, length 11) with the tag ``COMMIT``.
_COMMIT_COMPLETE = b"C\x00\x00\x00\x0bCOMMIT\x00"

Mode = Literal["before_commit", "after_commit", "chaos"]


class PgFaultProxy(TcpProxy):
    def __init__(self, target_host: str, target_port: int, *, seed: int = 0) -> None:
        super().__init__(target_host, target_port)
        self._armed: dict[str, int] = {"before_commit": 0, "after_commit": 0}
        self._chaos_rate = 0.0
        self._rng = random.Random(seed)
        self._state = threading.Lock()
        #: Connections cut so far, by mode.
        self.cuts: dict[str, int] = {"before_commit": 0, "after_commit": 0, "chaos": 0}
        #: ``COMMIT`` answers seen from the server (to tell that a cut happened late).
        self.commits = 0

    def arm(self, mode: Mode, count: int = 1) -> None:
        """Cut the next ``count`` connections that reach this point."""
        with self._state:
            self._armed[mode] += count

    def chaos(self, rate: float) -> None:
        """Cut at each frontend message with probability ``rate`` (0 turns it off)."""
        with self._state:
            self._chaos_rate = rate

    def _take(self, mode: str) -> bool:
        with self._state:
            if mode == "chaos":
                hit = self._chaos_rate > 0 and self._rng.random() < self._chaos_rate
            else:
                hit = self._armed[mode] > 0
                if hit:
                    self._armed[mode] -= 1
            if hit:
                self.cuts[mode] += 1
            return hit

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:  # type: ignore[override]
        try:
            # Messages go on at once: without this, Nagle's algorithm and delayed ACKs
            # add tens of milliseconds to every round trip through the proxy.
            for sock in (source, sink):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if sink.getpeername()[1] == self.target[1]:
                self._frontend(source, sink)  # the client's messages, to the server
            else:
                self._backend(source, sink)
        except OSError:
            pass
        finally:
            _close(source, sink)

    def _frontend(self, client: socket.socket, server: socket.socket) -> None:
        buffer = b""
        typed = False
        while data := client.recv(65536):
            buffer += data
            out = bytearray()
            while True:
                if typed:
                    if len(buffer) < 5:
                        break
                    size = 1 + struct.unpack("!I", buffer[1:5])[0]
                else:
                    if len(buffer) < 8:
                        break
                    size = struct.unpack("!I", buffer[:4])[0]
                if len(buffer) < size:
                    break
                message, buffer = buffer[:size], buffer[size:]
                if not typed:
                    code = struct.unpack("!I", message[4:8])[0]
                    if code in _NEGOTIATION_CODES:
                        client.sendall(b"N")  # no TLS, no GSS: the stream stays readable
                        continue
                    typed = True
                elif self._cut_before(message):
                    server.sendall(out)  # everything before the cut, nothing after
                    return
                out += message
            if out:
                server.sendall(out)

    def _cut_before(self, message: bytes) -> bool:
        kind = message[:1]
        if kind in (b"Q", b"P") and _is_commit(message) and self._take("before_commit"):
            return True
        return kind != b"X" and self._take("chaos")

    def _backend(self, server: socket.socket, client: socket.socket) -> None:
        tail = b""
        while data := server.recv(65536):
            seen = tail + data
            if _COMMIT_COMPLETE in seen:
                with self._state:
                    self.commits += seen.count(_COMMIT_COMPLETE)
                if self._take("after_commit"):
                    return  # committed on the server; the answer never arrives
            client.sendall(data)
            tail = seen[-(len(_COMMIT_COMPLETE) - 1) :]


def _is_commit(message: bytes) -> bool:
    """A simple query (``Q``) or a parse (``P``, the extended protocol psycopg's
    pipeline mode uses) whose statement is ``COMMIT``."""
    body = message[5:]
    if message[:1] == b"P":
        body = body.split(b"\x00", 1)[1] if b"\x00" in body else body  # skip the name
    return body.lstrip().upper().startswith(b"COMMIT")


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
