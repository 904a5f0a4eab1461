"""UTC timestamps at microsecond precision, the resolution every backend keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import ValidationError


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(value: object, field: str) -> datetime:
    """The instant in UTC. Anything but a datetime is refused (a record field typed
    wrong, ``created_at=None``), and so are naive datetimes: their meaning depends on the
    writer's machine. An instant that has no UTC date (``datetime.min`` at +23:00 is in
    year 0) is refused too, rather than raising ``OverflowError`` on conversion."""
    if not isinstance(value, datetime):
        raise ValidationError(
            f"{field} must be a timezone-aware datetime, got {type(value).__name__}",
            details={"field": field},
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} must be timezone-aware", details={"field": field})
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            f"{field} is outside the range of UTC timestamps (years 1 to 9999)",
            details={"field": field},
        ) from None


def optional_aware(value: datetime | None, field: str) -> datetime | None:
    """Like :func:`require_aware`, with ``None`` meaning "not set"."""
    return None if value is None else require_aware(value, field)


def to_iso(value: datetime | None, field: str = "timestamp") -> str | None:
    return None if value is None else require_aware(value, field).isoformat()


def parse_iso(value: object, field: str) -> datetime:
    """Strict parse for required timestamps (``validation_error`` on anything else)."""
    if isinstance(value, datetime):
        return require_aware(value, field)
    if value is None:
        raise ValidationError(f"{field} is required", details={"field": field})
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be an ISO-8601 string", details={"field": field})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{field} is not a valid ISO-8601 timestamp", details={"field": field}
        ) from None
    return require_aware(parsed, field)


def parse_optional_iso(value: object) -> datetime | None:
    """Lenient parse for the optional ``deleted_at`` and ``ended_at``: an unparsable or
    naive value reads as ``None``, so one damaged optional timestamp does not make a whole
    stored record unreadable."""
    if value is None:
        return None
    try:
        return parse_iso(value, "timestamp")
    except ValidationError:
        return None
