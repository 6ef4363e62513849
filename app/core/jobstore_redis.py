"""The shared job store: Redis, so several replicas serve and run the same jobs.

Records are JSON strings changed under WATCH (optimistic transactions); a claim pops the queue and
records a lease in one atomic script, so a job is run by one replica at a time, and a replica that
dies mid-job leaves a lease that expires and sends the job back to the queue.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from app.core.jobs import Change, JobRecord, JobStatus

CLAIM = """
local id = redis.call('RPOP', KEYS[1])
if id then redis.call('ZADD', KEYS[2], ARGV[1], id) end
return id
"""


class RedisJobStore:
    def __init__(self, url: str, prefix: str = "asr:") -> None:
        self._redis: Any = aioredis.Redis.from_url(url)  # redis-py's stubs are looser than its behaviour
        self._p = prefix
        self._claim = self._redis.register_script(CLAIM)

    def _job(self, job_id: str) -> str:
        return f"{self._p}job:{job_id}"

    def _audio(self, job_id: str) -> str:
        return f"{self._p}audio:{job_id}"

    @property
    def _queue(self) -> str:
        return f"{self._p}queue"

    @property
    def _leases(self) -> str:
        return f"{self._p}leases"

    def _kind(self, kind: str) -> str:
        return f"{self._p}kind:{kind}"

    @staticmethod
    def _decode(raw: bytes | None) -> JobRecord | None:
        if raw is None:
            return None
        record = JobRecord.from_dict(json.loads(raw))
        return None if record.expires is not None and record.expires < time.time() else record

    async def create(self, record: JobRecord, audio: bytes | None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._job(record.id), json.dumps(record.to_dict()), nx=True)
            if audio is not None:
                pipe.set(self._audio(record.id), audio)
            pipe.zadd(self._kind(record.kind), {record.id: record.created})
            pipe.lpush(self._queue, record.id)
            await pipe.execute()

    async def get(self, job_id: str) -> JobRecord | None:
        return self._decode(await self._redis.get(self._job(job_id)))

    async def audio(self, job_id: str) -> bytes | None:
        data: bytes | None = await self._redis.get(self._audio(job_id))
        return data

    async def page(self, kind: str, size: int, token: str | None) -> tuple[list[JobRecord], str | None]:
        offset = int(token) if token and token.isdigit() else 0
        ids = await self._redis.zrevrange(self._kind(kind), offset, offset + size)
        raws = await self._redis.mget([self._job(i.decode()) for i in ids]) if ids else []
        records = [r for r in (self._decode(raw) for raw in raws[:size]) if r is not None]
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self._redis.zrem(self._kind(kind), *gone)
        # The removed ids no longer take a place: the next page starts that much earlier.
        consumed = size - sum(1 for raw in raws[:size] if raw is None)
        return records, str(offset + consumed) if len(ids) > size else None

    async def count(self, kind: str) -> int:
        """Jobs past retention are counted until a listing drops them."""
        return int(await self._redis.zcard(self._kind(kind)))

    async def claim(self, lease_seconds: float) -> JobRecord | None:
        def start(record: JobRecord) -> bool:
            if record.status is not JobStatus.QUEUED:
                return False
            now = time.time()
            record.status, record.attempts = JobStatus.RUNNING, record.attempts + 1
            record.lease_until, record.updated, record.started = now + lease_seconds, now, record.started or now
            return True

        while True:
            job_id = await self._claim(keys=[self._queue, self._leases], args=[time.time() + lease_seconds])
            if job_id is None:
                return None
            record = await self.update(job_id.decode(), start)
            if record is not None and record.status is JobStatus.RUNNING:
                return record
            await self._redis.zrem(self._leases, job_id)  # cancelled or expired while queued: try the next

    async def update(self, job_id: str, change: Change) -> JobRecord | None:
        key = self._job(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    record = self._decode(await pipe.get(key))
                    if record is None or not change(record):
                        await pipe.reset()
                        return record
                    pipe.multi()
                    pipe.set(key, json.dumps(record.to_dict()))
                    if record.status is JobStatus.RUNNING and record.lease_until:
                        pipe.zadd(self._leases, {job_id: record.lease_until})
                    else:
                        pipe.zrem(self._leases, job_id)
                    if record.expires is not None:
                        # Past retention Redis forgets the job and its audio by itself.
                        pipe.expireat(key, int(record.expires) + 1)
                        pipe.expireat(self._audio(job_id), int(record.expires) + 1)
                    await pipe.execute()
                    return record
                except WatchError:
                    continue

    async def expired_leases(self) -> list[str]:
        ids = await self._redis.zrangebyscore(self._leases, "-inf", time.time())
        return [i.decode() for i in ids]

    async def requeue(self, job_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self._queue, 0, job_id)
            pipe.rpush(self._queue, job_id)  # the claim end: it runs next
            pipe.zrem(self._leases, job_id)
            await pipe.execute()

    async def purge(self) -> int:
        """Expiry is Redis's own (EXPIREAT at retention); listings drop ids whose record is gone."""
        return 0

    async def close(self) -> None:
        await self._redis.aclose()
