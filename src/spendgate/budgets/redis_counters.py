"""The Redis counter backend: replicas share one limit.

Each budget is one hash ``{prefix}:budget:{id}`` whose fields are ``u:<bucket>`` (used) and
``r:<bucket>`` (reserved), integers in the metric's unit. ``reserve`` and ``settle`` are Lua
scripts, so the check and the increments of every matching budget happen atomically in Redis:
two replicas cannot both take the last dollar. Integers are added with ``HINCRBY`` (exact 64-bit
arithmetic in Redis); Lua only compares totals. Fields older than the window are deleted as the
scripts pass; the hash expires when its newest bucket stops mattering.

In a Redis Cluster every budget key of one call would have to share a hash slot; this backend
targets a single Redis (or a primary with replicas).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from spendgate.budgets.counters import Hold, Level
from spendgate.errors import ConfigError, CounterUnavailable

log = logging.getLogger("spendgate.budgets")
MAX_CONNECTIONS = 64  # more concurrent calls wait for a connection (up to 5 s)

# per hold: ARGV = bucket, slots, amount, limit (-1 = none), ttl
_WINDOW = """
local function window(key, bucket, slots)
  local used, reserved = 0, 0
  local oldest = -1
  local vals = redis.call('HGETALL', key)
  for j = 1, #vals, 2 do
    local b = tonumber(string.sub(vals[j], 3))
    local v = tonumber(vals[j + 1])
    if b <= bucket - slots then
      if string.sub(vals[j], 1, 1) == 'u' or v == 0 then redis.call('HDEL', key, vals[j]) end
    elseif b <= bucket then
      if string.sub(vals[j], 1, 1) == 'u' then
        used = used + v
        if v > 0 and (oldest < 0 or b < oldest) then oldest = b end
      else
        reserved = reserved + v
      end
    end
  end
  return used, reserved, oldest
end
"""
RESERVE = (
    _WINDOW
    + """
local over = {}
for i = 1, #KEYS do
  local a = (i - 1) * 5
  local limit = tonumber(ARGV[a + 4])
  if limit >= 0 then
    local used, reserved = window(KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]))
    if used + reserved + tonumber(ARGV[a + 3]) > limit then table.insert(over, i - 1) end
  end
end
if #over > 0 then return over end
for i = 1, #KEYS do
  local a = (i - 1) * 5
  redis.call('HINCRBY', KEYS[i], 'r:' .. ARGV[a + 1], ARGV[a + 3])
  redis.call('EXPIRE', KEYS[i], ARGV[a + 5])
end
return over
"""
)
# per hold: ARGV = bucket, slots, amount, actual, ttl; returns each window's used total
SETTLE = (
    _WINDOW
    + """
local totals = {}
for i = 1, #KEYS do
  local a = (i - 1) * 5
  local bucket = ARGV[a + 1]
  local left = redis.call('HINCRBY', KEYS[i], 'r:' .. bucket, -tonumber(ARGV[a + 3]))
  if left < 0 then redis.call('HSET', KEYS[i], 'r:' .. bucket, 0) end
  redis.call('HINCRBY', KEYS[i], 'u:' .. bucket, ARGV[a + 4])
  redis.call('EXPIRE', KEYS[i], ARGV[a + 5])
  local used = window(KEYS[i], tonumber(bucket), tonumber(ARGV[a + 2]))
  table.insert(totals, used)
end
return totals
"""
)
LEVEL = (
    _WINDOW
    + """
local used, reserved, oldest = window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {used, reserved, oldest}
"""
)
SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u:' .. ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisCounter:
    def __init__(self, url: str, *, prefix: str = "spendgate") -> None:
        try:
            pool = BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=5)
        except ValueError as err:
            raise ConfigError(f"redis_url {url!r} is not a Redis URL: {err}") from None
        self._redis = Redis.from_pool(pool)  # closing the client closes the pool
        self._where = url.rsplit("@", 1)[-1]  # never a password in a message
        self._pending: set[asyncio.Task[None]] = set()
        self._prefix = prefix
        self._reserve = self._redis.register_script(RESERVE)
        self._settle = self._redis.register_script(SETTLE)
        self._level = self._redis.register_script(LEVEL)
        self._seed = self._redis.register_script(SEED)

    def key(self, budget_id: str) -> str:
        return f"{self._prefix}:budget:{budget_id}"

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as err:
            raise CounterUnavailable(f"Redis at {self._where} did not answer: {err}") from None

    async def reserve(self, holds: Sequence[Hold]) -> list[int]:
        args: list[Any] = []
        for h in holds:
            args += [h.bucket, h.slots, h.amount, -1 if h.limit is None else h.limit, h.ttl_s]
        over = await self._run(self._reserve, [self.key(h.budget_id) for h in holds], args)
        return [int(i) for i in over]

    async def settle(self, holds: Sequence[Hold], actual: Sequence[int]) -> list[int]:
        args: list[Any] = []
        for h, used in zip(holds, actual, strict=True):
            args += [h.bucket, h.slots, h.amount, used, h.ttl_s]
        totals = await self._run(self._settle, [self.key(h.budget_id) for h in holds], args)
        return [int(t) for t in totals]

    def settle_soon(
        self, holds: Sequence[Hold], actual: Sequence[int], then: Callable[[list[int]], None]
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._settle_then(holds, actual, then))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle_then(
        self, holds: Sequence[Hold], actual: Sequence[int], then: Callable[[list[int]], None]
    ) -> None:
        try:
            totals = await self.settle(holds, actual)
        except CounterUnavailable as err:  # the holds stay until their windows expire
            log.warning("could not settle a budget reservation: %s", err)
            return
        then(totals)

    async def level(self, budget_id: str, bucket: int, slots: int) -> Level:
        found = await self._run(self._level, [self.key(budget_id)], [bucket, slots])
        used, reserved, oldest = (int(v) for v in found)
        return Level(used, reserved, None if oldest < 0 else oldest)

    async def seed(self, budget_id: str, bucket: int, used: int, ttl_s: int) -> None:
        await self._run(self._seed, [self.key(budget_id)], [bucket, used, ttl_s])

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()
