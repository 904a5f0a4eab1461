"""UTC timestamps at microsecond precision, the resolution every backend keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import ValidationError


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, field: str) -> datetime:
    """Naive datetimes are refused: their meaning depends on the writer's machine."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} must be timezone-aware", details={"field": field})
    return value.astimezone(UTC)


def optional_aware(value: datetime | None, field: str) -> datetime | None:
    """Like :func:`require_aware`, with ``None`` meaning "not set"."""
    return None if value is None else require_aware(value, field)


def to_iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


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
