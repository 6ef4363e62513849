"""Requests per API key per minute. Past the quota a key is refused with RateLimited (429 with
Retry-After up to the end of its window, 1-60 s: the range the official SDKs wait out) and other
keys are not affected. Windows are fixed minutes; with ASR_REDIS_URL the counts are shared by every
replica, otherwise they are this process's. A Redis that does not answer lets requests through (a
limiter outage must not take the API down) and says so in the log."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from app.core.errors import Overloaded

log = logging.getLogger("asr.ratelimit")


class RateLimited(Overloaded):
    kind = "rate_limited"


class RateLimiter:
    def __init__(
        self,
        per_window: int,
        *,
        window_seconds: float = 60.0,
        redis_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_window = per_window
        self.window_seconds = window_seconds
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}
        self._redis: Any = None
        if redis_url and per_window:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(redis_url, socket_timeout=2.0)

    async def check(self, key: str) -> None:
        """Count one request of `key`; RateLimited if its window's quota is spent."""
        if not self.per_window:
            return
        now = self._clock()
        window = int(now // self.window_seconds)
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]  # keys are never stored as given
        count = await self._count(digest, window)
        if count > self.per_window:
            retry = max(1, math.ceil((window + 1) * self.window_seconds - now))
            raise RateLimited(
                f"Rate limit reached: {self.per_window} requests per {self.window_seconds:g} s for this key; "
                f"retry in {retry} s",
                retry_after=retry,
            )

    async def _count(self, digest: str, window: int) -> int:
        if self._redis is None:
            if all(w != window for _, w in self._counts):
                self._counts.clear()  # a new window: the old counts are done with
            self._counts[digest, window] = self._counts.get((digest, window), 0) + 1
            return self._counts[digest, window]
        name = f"asr:ratelimit:{digest}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, math.ceil(self.window_seconds * 2))
                count, _ = await pipe.execute()
            return int(count)
        except Exception as exc:
            log.warning("rate limiter's Redis did not answer (%s); not limiting", exc)
            return 0

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
