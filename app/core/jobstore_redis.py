"""The shared job store: Redis, so several replicas serve and run the same jobs.

Records are JSON strings changed under WATCH (optimistic transactions); a claim pops the queue and
records a lease in one atomic script, so a job is run by one replica at a time, and a replica that
dies mid-job leaves a lease that expires and sends the job back to the queue.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from app.core.errors import Internal
from app.core.jobs import Change, JobRecord, JobStatus, StoreCaps

CREATE = """
if redis.call('LLEN', KEYS[4]) + redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[5]) then return 'jobs' end
local stored = tonumber(redis.call('GET', KEYS[6]) or '0')
if stored + string.len(ARGV[2]) > tonumber(ARGV[6]) then return 'bytes:' .. stored end
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 'exists' end
if ARGV[7] == '1' then
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('INCRBY', KEYS[6], string.len(ARGV[2]))
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('LPUSH', KEYS[4], ARGV[4])
return 'ok'
"""
CLAIM = """
local id = redis.call('RPOP', KEYS[1])
if id then redis.call('ZADD', KEYS[2], ARGV[1], id) end
return id
"""


class RedisJobStore:
    def __init__(self, url: str, prefix: str = "asr:", *, caps: StoreCaps | None = None) -> None:
        self._redis: Any = aioredis.Redis.from_url(url)  # redis-py's stubs are looser than its behaviour
        self._p = prefix
        self.caps = caps or StoreCaps()
        self._claim = self._redis.register_script(CLAIM)
        self._create = self._redis.register_script(CREATE)

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

    @property
    def _stored(self) -> str:
        """Bytes of audio held, kept by create and by every terminal update."""
        return f"{self._p}audio-bytes"

    def _kind(self, kind: str) -> str:
        return f"{self._p}kind:{kind}"

    @staticmethod
    def _decode(raw: bytes | None) -> JobRecord | None:
        if raw is None:
            return None
        record = JobRecord.from_dict(json.loads(raw))
        return None if record.expires is not None and record.expires < time.time() else record

    async def create(self, record: JobRecord, audio: bytes | None) -> None:
        # One script: the caps are checked and the job stored atomically across replicas.
        keys = [self._job(record.id), self._audio(record.id), self._kind(record.kind), self._queue, self._leases]
        args: list[str | bytes | float] = [json.dumps(record.to_dict()), audio or b"", record.created, record.id]
        caps: list[str | bytes | float] = [
            self.caps.max_active_jobs,
            self.caps.max_audio_bytes,
            "1" if audio is not None else "0",
        ]
        outcome = (await self._create(keys=[*keys, self._stored], args=[*args, *caps])).decode()
        if outcome == "jobs":
            self.caps.check(self.caps.max_active_jobs, 0, 0)
        elif outcome.startswith("bytes:"):
            self.caps.check(0, int(outcome.split(":")[1]), len(audio or b""))
        elif outcome != "ok":
            raise Internal(f"job {record.id} exists already")

    async def get(self, job_id: str) -> JobRecord | None:
        return self._decode(await self._redis.get(self._job(job_id)))

    async def audio(self, job_id: str) -> bytes | None:
        data: bytes | None = await self._redis.get(self._audio(job_id))
        return data

    async def page(self, kind: str, size: int, token: str | None) -> tuple[list[JobRecord], str | None]:
        offset = int(token) if token and token.isdigit() else 0
        ids = await self._redis.zrevrange(self._kind(kind), offset, offset + size)
        raws = await self._redis.mget([self._job(i.decode()) for i in ids]) if ids else []
        decoded = await asyncio.to_thread(lambda: [self._decode(raw) for raw in raws[:size]])  # off the loop
        records = [r for r in decoded if r is not None]
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
                    await pipe.watch(key, self._audio(job_id))
                    record = self._decode(await pipe.get(key))
                    if record is None or not change(record):
                        await pipe.reset()
                        return record
                    audio_bytes = int(await pipe.strlen(self._audio(job_id))) if record.status.terminal else 0
                    pipe.multi()
                    pipe.set(key, json.dumps(record.to_dict()))
                    if record.status.terminal:
                        pipe.lrem(self._queue, 0, job_id)  # so the queue's length counts live jobs only
                    if audio_bytes:
                        pipe.delete(self._audio(job_id))
                        pipe.decrby(self._stored, audio_bytes)
                    if record.status is JobStatus.RUNNING and record.lease_until:
                        pipe.zadd(self._leases, {job_id: record.lease_until})
                    else:
                        pipe.zrem(self._leases, job_id)
                    if record.expires is not None:
                        # Past retention Redis forgets the job and its audio by itself.
                        pipe.expireat(key, int(record.expires) + 1)
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
