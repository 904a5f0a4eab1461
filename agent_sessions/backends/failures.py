"""What every ``eventsourcing`` recorder's failures mean, whatever the driver.

``eventsourcing`` maps driver exceptions onto its own ``PersistenceError`` hierarchy
(keeping the driver's exception as ``__cause__``). The classes decided here mean the
same on every backend; each backend module decides the rest from its driver's codes.
"""

from __future__ import annotations

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    IntegrityError,
)

from ..ports.failures import Failure


def recorder_failure(exc: BaseException) -> Failure | None:
    """The failure classes every recorder raises alike; ``None``: the backend decides."""
    if isinstance(exc, IntegrityError):
        return Failure.CONFLICT
    if isinstance(exc, ConnectionPoolClosedError):
        return Failure.OTHER
    if isinstance(exc, ConnectionUnavailableError):
        return Failure.CONNECTION
    return None


def driver_cause(exc: BaseException) -> BaseException:
    """The driver's exception behind a recorder's, or the exception itself."""
    return exc.__cause__ if exc.__cause__ is not None else exc
