"""spendgate API keys: made once, shown once, stored as a SHA-256 hash, served from memory.

A key looks like ``sg-<43 url-safe characters>`` (256 random bits), so a plain SHA-256 is a safe
hash for it. The gateway keeps every key record in memory (``KeyRing``), refreshed from the
store in the background; a key it does not know yet is looked up in the store once (and a miss
remembered briefly), so a freshly created key works at once and a flood of bad keys cannot
hammer the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from spendgate.errors import AwsError
from spendgate.store.keys import PREFIX_LENGTH, KeyRecord

log = logging.getLogger("spendgate.gateway.keys")
KEY_PREFIX = "sg-"
MISS_TTL_S = 10.0


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``X-Spendgate-Key`` or ``Authorization: Bearer``."""
    key = headers.get("x-spendgate-key")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(key: str) -> str:
    return f"{key_prefix(key)}…" if key.startswith(KEY_PREFIX) else "(not a spendgate key)"


def denied(message: str) -> AwsError:
    return AwsError("AccessDeniedException", f"spendgate: {message}")


class KeyRing:
    """In-memory key records by hash. ``lookup`` reads the store (call it from a thread)."""

    def __init__(
        self,
        load_all: Callable[[], Sequence[KeyRecord]],
        lookup: Callable[[str], KeyRecord | None],
        *,
        refresh_s: float = 5.0,
    ) -> None:
        self._load_all = load_all
        self._lookup = lookup
        self._refresh_s = refresh_s
        self._by_hash: dict[str, KeyRecord] = {}
        self._misses: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def load(self) -> int:
        self._by_hash = {r.key_hash: r for r in self._load_all()}
        return len(self._by_hash)

    async def start(self) -> None:
        await asyncio.to_thread(self.load)
        self._task = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def authenticate(self, key: str | None, now: datetime) -> KeyRecord:
        """The record of a valid key; AwsError(AccessDeniedException) saying what is wrong."""
        if not key:
            raise denied(
                "no API key: send a spendgate key as 'Authorization: Bearer <key>' "
                "(AWS_BEARER_TOKEN_BEDROCK) or 'X-Spendgate-Key: <key>'"
            )
        digest = hash_key(key)
        record = self._by_hash.get(digest) or await self._fetch(digest)
        if record is None:
            raise denied(f"unknown API key {_shown(key)}")
        if record.revoked_at is not None and record.revoked_at <= now:
            raise denied(
                f"API key {record.id} ({_shown(key)}) was revoked at {_iso(record.revoked_at)}"
            )
        if record.expires_at is not None and record.expires_at <= now:
            raise denied(
                f"API key {record.id} ({_shown(key)}) expired at {_iso(record.expires_at)}"
            )
        return record

    async def _fetch(self, digest: str) -> KeyRecord | None:
        missed = self._misses.get(digest)
        if missed is not None and time.monotonic() - missed < MISS_TTL_S:
            return None
        record = await asyncio.to_thread(self._lookup, digest)
        if record is None:
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[digest] = time.monotonic()
        else:
            self._by_hash[digest] = record
        return record

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await asyncio.to_thread(self.load)
            except Exception:  # keep serving the keys we have, and say why
                log.warning("could not refresh API keys from the store", exc_info=True)
