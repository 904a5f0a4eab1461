"""Wakes long-polling readers when events are appended.

Within a process a condition variable wakes waiters at once. Writers in other processes
cannot reach it, so backends that admit them give a ``poll_interval`` and waiters also
re-check on that beat (PostgreSQL will wake them with LISTEN/NOTIFY instead).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


class ChangeSignal:
    def __init__(self, poll_interval: float | None = None) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._closed = False
        self._listeners: list[Callable[[], None]] = []
        self.poll_interval = poll_interval

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (on the notifying thread; it must not block) after each
        change and on close; returns the function that unsubscribes it. For waiters that
        are not threads (the async facade's event loop)."""
        with self._condition:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._condition:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _tell_listeners(self) -> None:
        with self._condition:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
        self._tell_listeners()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._tell_listeners()

    def wait(self, timeout: float) -> None:
        """Block until the next change, ``timeout`` seconds, or the poll beat."""
        if self.poll_interval is not None:
            timeout = min(timeout, self.poll_interval)
        with self._condition:
            if not self._closed:
                self._condition.wait(timeout)

    def wait_for(self, query: Callable[[], list[_T]], timeout: float) -> list[_T]:
        """Run ``query`` until it returns something or ``timeout`` seconds pass.

        The generation counter closes the gap between a query and the wait: a change that
        lands in between is seen, never slept through.
        """
        deadline = time.monotonic() + timeout
        while True:
            generation = self._generation
            if self._closed:
                return []
            result = query()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return []
            wait = remaining if self.poll_interval is None else min(remaining, self.poll_interval)
            with self._condition:
                if self._generation == generation and not self._closed:
                    self._condition.wait(wait)
