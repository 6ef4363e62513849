"""The default job store: one SQLite file (WAL) under the data folder, for a single server.

Calls run in a thread under one lock, so the event loop never waits on the disk. One server
process holds the file: a second one (`uvicorn --workers 2`, two pods on one volume) is refused at
start instead of stealing the first one's running jobs; replicas share a Redis store instead.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from app.core.errors import Unavailable
from app.core.jobs import Change, JobRecord, JobStatus, StoreCaps

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    lease_until REAL,
    expires REAL,
    record TEXT NOT NULL,
    audio BLOB,
    audio_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_kind ON jobs (kind, created);
"""


class SqliteJobStore:
    def __init__(self, path: Path, *, takeover_on_start: bool = True, caps: StoreCaps | None = None) -> None:
        self.caps = caps or StoreCaps()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _hold_lock(path.with_name(path.name + ".lock"))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "audio_bytes" not in columns:  # a store written by an older release
            self._db.execute("ALTER TABLE jobs ADD COLUMN audio_bytes INTEGER NOT NULL DEFAULT 0")
        self._lock = threading.Lock()
        if takeover_on_start:
            # One file serves one server: whatever was running belonged to a process now gone.
            self._db.execute("UPDATE jobs SET lease_until = 0 WHERE status = 'running'")

    async def _call(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _write(self, record: JobRecord, audio: bytes | None = None, *, insert: bool = False) -> None:
        values = (
            record.kind,
            record.status.value,
            record.created,
            record.lease_until,
            record.expires,
            json.dumps(record.to_dict()),
        )
        if insert:
            self._db.execute(
                "INSERT INTO jobs (kind, status, created, lease_until, expires, record, audio, audio_bytes, id)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (*values, audio, len(audio or b""), record.id),
            )
        elif record.status.terminal:
            self._db.execute(
                "UPDATE jobs SET kind=?, status=?, created=?, lease_until=?, expires=?, record=?,"
                " audio=NULL, audio_bytes=0 WHERE id=?",
                (*values, record.id),
            )
        else:
            self._db.execute(
                "UPDATE jobs SET kind=?, status=?, created=?, lease_until=?, expires=?, record=? WHERE id=?",
                (*values, record.id),
            )

    def _read(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT record, expires FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        return JobRecord.from_dict(json.loads(row[0]))

    async def create(self, record: JobRecord, audio: bytes | None) -> None:
        def insert() -> None:
            active, stored = self._db.execute(
                "SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'running')),"
                " COALESCE(SUM(audio_bytes), 0) FROM jobs"
            ).fetchone()
            self.caps.check(int(active), int(stored), len(audio or b""))
            self._write(record, audio, insert=True)

        await self._call(insert)

    async def get(self, job_id: str) -> JobRecord | None:
        result: JobRecord | None = await self._call(self._read, job_id)
        return result

    async def audio(self, job_id: str) -> bytes | None:
        row = await self._call(lambda: self._db.execute("SELECT audio FROM jobs WHERE id=?", (job_id,)).fetchone())
        return None if row is None else row[0]

    async def page(self, kind: str, size: int, token: str | None) -> tuple[list[JobRecord], str | None]:
        offset = int(token) if token and token.isdigit() else 0

        def query() -> tuple[list[JobRecord], bool]:
            sql = (
                "SELECT record FROM jobs WHERE kind=? AND (expires IS NULL OR expires >= ?)"
                " ORDER BY created DESC, id LIMIT ? OFFSET ?"
            )
            rows = self._db.execute(sql, (kind, time.time(), size + 1, offset)).fetchall()
            # Parsed here, in the thread: a page of 1000 long results would stall the loop.
            return [JobRecord.from_dict(json.loads(r[0])) for r in rows[:size]], len(rows) > size

        records, more = await self._call(query)
        return records, str(offset + size) if more else None

    async def count(self, kind: str) -> int:
        row = await self._call(
            lambda: self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE kind=? AND (expires IS NULL OR expires >= ?)", (kind, time.time())
            ).fetchone()
        )
        return int(row[0])

    async def claim(self, lease_seconds: float) -> JobRecord | None:
        def take() -> JobRecord | None:
            now = time.time()
            # One statement takes the job: no other claim can see it queued in between.
            row = self._db.execute(
                "UPDATE jobs SET status='running', lease_until=? WHERE status='queued' AND id="
                "(SELECT id FROM jobs WHERE status='queued' ORDER BY created LIMIT 1) RETURNING id",
                (now + lease_seconds,),
            ).fetchone()
            if row is None:
                return None
            record = self._read(row[0])
            if record is None:
                return None
            record.status, record.attempts = JobStatus.RUNNING, record.attempts + 1
            record.lease_until, record.updated, record.started = now + lease_seconds, now, record.started or now
            self._write(record)
            return record

        result: JobRecord | None = await self._call(take)
        return result

    async def update(self, job_id: str, change: Change) -> JobRecord | None:
        def apply() -> JobRecord | None:
            record = self._read(job_id)
            if record is not None and change(record):
                self._write(record)
            return record

        result: JobRecord | None = await self._call(apply)
        return result

    async def expired_leases(self) -> list[str]:
        rows = await self._call(
            lambda: self._db.execute(
                "SELECT id FROM jobs WHERE status='running' AND lease_until < ?", (time.time(),)
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def requeue(self, job_id: str) -> None:
        """Queued jobs are found by status here; nothing else to do."""

    async def purge(self) -> int:
        cursor = await self._call(lambda: self._db.execute("DELETE FROM jobs WHERE expires < ?", (time.time(),)))
        return int(cursor.rowcount)

    async def close(self) -> None:
        await self._call(self._db.close)
        os.close(self._lock_fd)  # the lock goes with the descriptor


def _hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Unavailable(
            f"another server process holds the job store {path.with_suffix('')}: one server per file"
            " (several replicas share ASR_REDIS_URL instead)"
        ) from None
    return fd
