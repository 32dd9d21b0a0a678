"""The simulator's prompt cache: cache points behave as they do on Bedrock.

For each cache breakpoint (``spendgate.bedrock.prompts``) whose prefix reaches
``min_tokens``, the longest prefix already cached and unexpired is *read*; every token from there
to the last qualifying breakpoint is *written*, each stretch with the TTL of the breakpoint that
closes it. A hit refreshes the entry's TTL (never shortening it). Keys are (model, prefix
SHA-256); no text is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from spendgate.bedrock.prompts import Prompt

TTL = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}


@dataclass(frozen=True, slots=True)
class CacheUse:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0


class PromptCache:
    def __init__(self, *, min_tokens: int, max_entries: int = 100_000) -> None:
        self._min_tokens = min_tokens
        self._max_entries = max_entries
        self._expiry: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    def use(self, model: str, prompt: Prompt, now: datetime) -> CacheUse:
        if not prompt.breakpoints:
            return CacheUse()
        _, hashes = prompt.hashes()
        points = [
            (bp, h, prompt.prefix_tokens(bp.end))
            for bp, h in zip(prompt.breakpoints, hashes, strict=True)
        ]
        points = [p for p in points if p[2] >= self._min_tokens]
        read_index, read_tokens = -1, 0
        for i, (bp, digest, tokens) in enumerate(points):
            if self._alive((model, digest), now):
                read_index, read_tokens = i, tokens
                self._put((model, digest), now + TTL[bp.ttl])
        writes = {"5m": 0, "1h": 0}
        covered = read_tokens
        for bp, digest, tokens in points[read_index + 1 :]:
            writes[bp.ttl] += tokens - covered
            covered = tokens
            self._put((model, digest), now + TTL[bp.ttl])
        return CacheUse(read_tokens, writes["5m"], writes["1h"])

    def _alive(self, key: tuple[str, str], now: datetime) -> bool:
        expiry = self._expiry.get(key)
        return expiry is not None and expiry > now

    def _put(self, key: tuple[str, str], expiry: datetime) -> None:
        current = self._expiry.get(key)
        self._expiry[key] = expiry if current is None else max(current, expiry)
        self._expiry.move_to_end(key)
        while len(self._expiry) > self._max_entries:
            self._expiry.popitem(last=False)
