"""``KeyRecord``: a spendgate API key as stored — its SHA-256 hash and display prefix, never
the key itself.

``key_hash`` must be 64 lowercase hex characters (``hashlib.sha256(key).hexdigest()``) and
``key_prefix`` at most 10 characters, so a clear key cannot be stored by mistake: a key passed
where its hash belongs is refused with ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spendgate.events import ATTRIBUTION_FIELDS
from spendgate.store.types import as_utc

PREFIX_LENGTH = 10
# the attribution a key can default (per-call ids like session_id make no sense as defaults)
DEFAULT_FIELDS = tuple(f for f in ATTRIBUTION_FIELDS if f not in ("session_id", "workflow_id"))
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_hash(key_hash: str, key_prefix: str) -> None:
    """``ValueError`` unless ``key_hash`` is SHA-256 hex and ``key_prefix`` is short enough."""
    if not _SHA256_HEX.fullmatch(key_hash):
        raise ValueError("key_hash must be the SHA-256 hex digest of the key, not the key")
    if len(key_prefix) > PREFIX_LENGTH:
        raise ValueError(f"key_prefix holds at most the first {PREFIX_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One row of ``api_keys``. ``defaults`` maps attribution fields (``DEFAULT_FIELDS``) to
    the values a request made with this key gets unless it says otherwise; ``allowed_models``
    ``None`` means any model."""

    id: str  # "key_xxxxxxxx"
    name: str
    key_hash: str
    key_prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    allowed_models: tuple[str, ...] | None = None
    defaults: Mapping[str, str] = field(default_factory=dict)
    role_arn: str | None = None
    external_id: str | None = None

    def __post_init__(self) -> None:
        check_hash(self.key_hash, self.key_prefix)
        unknown = sorted(set(self.defaults) - set(DEFAULT_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown key defaults {unknown}; allowed: {', '.join(DEFAULT_FIELDS)}"
            )
        for moment in (self.created_at, self.expires_at, self.revoked_at):
            if moment is not None:
                as_utc(moment)

    def active(self, now: datetime) -> bool:
        """True unless revoked or expired at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


def key_to_row(record: KeyRecord) -> dict[str, Any]:
    """The ``api_keys`` row for ``record``."""
    return {
        "id": record.id,
        "name": record.name,
        "key_hash": record.key_hash,
        "key_prefix": record.key_prefix,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "allowed_models": None if record.allowed_models is None else list(record.allowed_models),
        "defaults": dict(record.defaults),
        "role_arn": record.role_arn,
        "external_id": record.external_id,
    }


def row_to_key(row: Mapping[Any, Any]) -> KeyRecord:
    """The ``KeyRecord`` an ``api_keys`` row holds."""
    values = dict(row)
    models = values.pop("allowed_models")
    return KeyRecord(allowed_models=None if models is None else tuple(models), **values)
