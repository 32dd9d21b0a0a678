"""Deterministic answers: what the simulated model 'says' and what it reports using.

The answer length is ``X-Sim-Output-Tokens`` when the request sets it, else 16 + (a hash of the
prompt mod 240) tokens, capped by the request's max tokens (then the stop reason is
``max_tokens``). Every generated token is one 4-character unit ("lor " ...), so the text length
and the reported output tokens agree with the prompt estimator (``ceil(chars / 4)``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from spendgate.sim.cache import CacheUse

_UNITS = (
    "lor ips dol sit ame con adi eli sed doe eiu tem inc utl abo dol mag ali qua "
    "uta eni adm ven qui nos exe ull lab nis ali exe com con dui aut iru rep vol "
)
_UNIT_COUNT = len(_UNITS) // 4


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    input_tokens: int  # uncached input, Bedrock's convention
    output_tokens: int
    cache: CacheUse
    stop_reason: str  # Converse spelling: end_turn | max_tokens

    @property
    def cache_write(self) -> int:
        return self.cache.write_5m + self.cache.write_1h


def answer_length(prompt_digest: bytes, forced: int | None) -> int:
    if forced is not None:
        return forced
    return 16 + int.from_bytes(prompt_digest[:4], "big") % 240


def make_reply(
    prompt_tokens: int,
    prompt_digest: bytes,
    cache: CacheUse,
    *,
    max_tokens: int | None,
    forced_output: int | None = None,
) -> Reply:
    wanted = answer_length(prompt_digest, forced_output)
    output = wanted if max_tokens is None else min(wanted, max_tokens)
    stop = "max_tokens" if output < wanted else "end_turn"
    cached = cache.read + cache.write_5m + cache.write_1h
    return Reply(
        text=generate_text(prompt_digest, output),
        input_tokens=max(prompt_tokens - cached, 0),
        output_tokens=output,
        cache=cache,
        stop_reason=stop,
    )


def generate_text(seed: bytes, tokens: int) -> str:
    start = int.from_bytes(hashlib.sha256(seed).digest()[:2], "big") % _UNIT_COUNT
    units = _UNITS * (1 + (start + tokens) // _UNIT_COUNT)
    return units[start * 4 : (start + tokens) * 4].rstrip() or ""


def split_tokens(text: str, per_chunk: int) -> list[str]:
    """The text in pieces of ``per_chunk`` tokens (4 characters each), for stream deltas."""
    size = max(per_chunk, 1) * 4
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
