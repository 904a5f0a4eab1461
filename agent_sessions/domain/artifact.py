"""The artifact registry record: metadata of a stored blob."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .checks import checked_int
from .errors import ValidationError
from .serialization import json_map, optional_string, required_string, to_json_value
from .timestamps import (
    optional_aware,
    parse_iso,
    parse_optional_iso,
    require_aware,
    to_iso,
    utc_now,
)


def new_artifact_id() -> str:
    """``art_`` plus URL-safe base64 of 12 random bytes (16 characters): the shape artifact
    ids have had since 0.1.0, unlike the hex of ``new_id``."""
    return "art_" + base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    id: str
    key: str
    byte_size: int
    checksum_sha256: str
    storage_backend: str
    storage_ref: str
    session_id: str | None = None
    run_id: str | None = None
    content_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)
    deleted_at: datetime | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("id", "key", "checksum_sha256", "storage_backend"):
            set_(self, name, required_string(getattr(self, name), name))
        # Where an artifact store put the bytes (a file URI under its root, an S3 URL
        # with bucket and prefix): no index holds it, and its length is the store's.
        set_(self, "storage_ref", required_string(self.storage_ref, "storage_ref", max_bytes=None))
        set_(self, "byte_size", checked_int(self.byte_size, "byte_size"))
        for name in ("session_id", "run_id", "content_type"):
            set_(self, name, optional_string(getattr(self, name), name))
        set_(self, "metadata", json_map(self.metadata, "metadata"))
        set_(self, "created_at", require_aware(self.created_at, "created_at"))
        set_(self, "deleted_at", optional_aware(self.deleted_at, "deleted_at"))

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "run_id": self.run_id,
            "key": self.key,
            "content_type": self.content_type,
            "byte_size": self.byte_size,
            "checksum_sha256": self.checksum_sha256,
            "storage_backend": self.storage_backend,
            "storage_ref": self.storage_ref,
            "metadata": to_json_value(self.metadata, field="metadata"),
            "created_at": to_iso(self.created_at, "created_at"),
            "deleted_at": to_iso(self.deleted_at, "deleted_at"),
        }

    def public_dict(self) -> dict[str, Any]:
        """The metadata map the registry and exports hand out: no ``deleted_at``."""
        exported = self.to_dict()
        del exported["deleted_at"]
        return exported

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, Mapping):
            raise ValidationError("Invalid artifact map")
        byte_size = data.get("byte_size")
        if byte_size is None:
            raise ValidationError("byte_size is required", details={"field": "byte_size"})
        return cls(
            id=required_string(data.get("id"), "id"),
            key=required_string(data.get("key"), "key"),
            byte_size=byte_size,
            checksum_sha256=required_string(data.get("checksum_sha256"), "checksum_sha256"),
            storage_backend=required_string(data.get("storage_backend"), "storage_backend"),
            storage_ref=required_string(data.get("storage_ref"), "storage_ref"),
            session_id=data.get("session_id"),
            run_id=data.get("run_id"),
            content_type=data.get("content_type"),
            metadata=json_map(data.get("metadata"), "metadata"),
            created_at=parse_iso(data.get("created_at"), "created_at"),
            deleted_at=parse_optional_iso(data.get("deleted_at")),
        )
