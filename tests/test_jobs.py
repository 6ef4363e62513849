"""Durable jobs: the store contract on SQLite and Redis, and the runner on a real pool with the fake engine."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import pytest

from app.core import codec
from app.core.audio import UNDECODABLE, DecodeLimits
from app.core.engine import PipelineConfig
from app.core.errors import Cancelled, Overloaded, Unavailable
from app.core.jobs import JobRecord, JobStatus, JobStore, StoreCaps, cancel, fail, fenced, succeed
from app.core.jobstore_redis import RedisJobStore
from app.core.jobstore_sqlite import SqliteJobStore
from app.core.pool import DecoderPool, PoolConfig
from app.core.runner import JobRunner, RunnerConfig
from app.core.service import SpeechService
from app.core.types import AudioInput, TranscriptionRequest
from tests.audio_tools import wav_bytes
from tests.conftest import fake_registry
from tests.fakes import FakeEngineFactory

RETENTION = 60.0
CONFIG = RunnerConfig(concurrency=1, lease_seconds=2, max_attempts=2, retention_seconds=RETENTION, poll_seconds=0.1)
BASE = time.time() - 1000  # distinct, increasing `created` values: FIFO and listing order never tie


def new_record(index: int = 0, kind: str = "google", **fields: Any) -> JobRecord:
    return JobRecord(
        id=f"job-{index}-{uuid4().hex[:8]}",
        kind=kind,
        request={"model": "whisper-base", "language": "en", "phrases": ["a", "b"]},
        meta={"version": "v1", "uri": None, "config": {"rate": 16000}},
        created=BASE + index,
        **fields,
    )


def redis_store(request: pytest.FixtureRequest, prefix: str | None = None) -> RedisJobStore:
    url: str = request.getfixturevalue("redis_url")
    return RedisJobStore(url, prefix=prefix or f"t{uuid4().hex}:")


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    opened: JobStore = SqliteJobStore(tmp_path / "jobs.sqlite3") if request.param == "sqlite" else redis_store(request)
    yield opened
    await opened.close()


async def all_pages(store: JobStore, kind: str, size: int) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    for _ in range(50):
        records, token = await store.page(kind, size, token)
        ids += [r.id for r in records]
        if token is None:
            return ids
    raise AssertionError("page() never returned a final page")


def set_fields(**fields: Any) -> Callable[[JobRecord], bool]:
    def change(record: JobRecord) -> bool:
        for name, value in fields.items():
            setattr(record, name, value)
        return True

    return change


# -- the store contract ------------------------------------------------------------------------------


async def test_create_and_get_round_trip(store: JobStore) -> None:
    record = new_record(progress=12.5)
    await store.create(record, b"RIFF-not-really-audio\x00\xff")
    got = await store.get(record.id)
    assert got == record
    assert got is not None and got.status is JobStatus.QUEUED
    assert await store.audio(record.id) == b"RIFF-not-really-audio\x00\xff"

    no_audio = new_record(1)
    await store.create(no_audio, None)
    assert await store.get(no_audio.id) == no_audio
    assert await store.audio(no_audio.id) is None


@pytest.mark.parametrize("end", [succeed, cancel])
async def test_a_job_that_ends_loses_its_audio_and_frees_the_stores_bytes(store: JobStore, end: Any) -> None:
    store.caps = StoreCaps(max_active_jobs=10, max_audio_bytes=1000)  # type: ignore[attr-defined]
    first = new_record(0)
    await store.create(first, b"a" * 600)
    with pytest.raises(Overloaded, match="bytes of audio"):
        await store.create(new_record(1), b"b" * 600)
    await store.claim(lease_seconds=30)
    ended = await store.update(first.id, lambda r: end(r, {"segments": []}, 60) if end is succeed else end(r, 60))
    assert ended is not None and ended.status.terminal
    assert await store.audio(first.id) is None
    await store.create(new_record(1), b"b" * 600)  # the ended job's bytes no longer count


async def test_the_store_caps_active_jobs(store: JobStore) -> None:
    store.caps = StoreCaps(max_active_jobs=3, max_audio_bytes=1 << 20)  # type: ignore[attr-defined]
    records = [new_record(i) for i in range(3)]
    for record in records:
        await store.create(record, b"x")
    await store.claim(lease_seconds=30)  # running still counts
    with pytest.raises(Overloaded, match="queued or running"):
        await store.create(new_record(3), None)
    await store.update(records[1].id, lambda r: cancel(r, 60))
    await store.create(new_record(3), None)


async def test_unknown_job_is_none(store: JobStore) -> None:
    assert await store.get("no-such-job") is None
    assert await store.audio("no-such-job") is None
    assert await store.update("no-such-job", set_fields(progress=5.0)) is None


async def test_claim_takes_the_oldest_queued_job_under_a_lease(store: JobStore) -> None:
    records = [new_record(i) for i in range(3)]
    for record in records:
        await store.create(record, b"x")
    before = time.time()
    claimed = await store.claim(lease_seconds=30)
    assert claimed is not None and claimed.id == records[0].id
    assert claimed.status is JobStatus.RUNNING and claimed.attempts == 1
    assert claimed.lease_until is not None and before + 29 < claimed.lease_until <= time.time() + 30
    assert claimed.started is not None and claimed.started >= before
    assert await store.get(records[0].id) == claimed
    second = await store.claim(lease_seconds=30)
    assert second is not None and second.id == records[1].id
    stored = await store.get(records[2].id)
    assert stored is not None and stored.status is JobStatus.QUEUED


async def test_claim_on_an_empty_queue_is_none(store: JobStore) -> None:
    assert await store.claim(lease_seconds=30) is None
    record = new_record()
    await store.create(record, None)
    assert await store.claim(lease_seconds=30) is not None
    assert await store.claim(lease_seconds=30) is None


async def test_concurrent_claims_take_each_job_once(store: JobStore) -> None:
    records = [new_record(i) for i in range(5)]
    for record in records:
        await store.create(record, None)
    claimed = await asyncio.gather(*(store.claim(lease_seconds=30) for _ in range(10)))
    taken = [c.id for c in claimed if c is not None]
    assert sorted(taken) == sorted(r.id for r in records)
    assert claimed.count(None) == 5
    for record in records:
        stored = await store.get(record.id)
        assert stored is not None and stored.status is JobStatus.RUNNING and stored.attempts == 1


async def test_update_applies_a_change_or_leaves_the_record(store: JobStore) -> None:
    record = new_record()
    await store.create(record, None)

    def progress(r: JobRecord) -> bool:
        r.progress, r.meta = 42.0, {**r.meta, "note": "half"}
        return True

    updated = await store.update(record.id, progress)
    assert updated is not None and updated.progress == 42.0 and updated.meta["note"] == "half"
    assert await store.get(record.id) == updated

    def refuse(r: JobRecord) -> bool:
        r.progress = 99.0  # edited in place, but refused: nothing is written
        return False

    refused = await store.update(record.id, refuse)
    assert refused is not None
    assert await store.get(record.id) == updated


async def test_expired_leases_lists_running_jobs_past_their_lease(store: JobStore) -> None:
    stale, alive, queued = new_record(0), new_record(1), new_record(2)
    for record in (stale, alive, queued):
        await store.create(record, None)
    assert await store.claim(lease_seconds=30) is not None
    assert await store.claim(lease_seconds=30) is not None
    assert await store.expired_leases() == []
    await store.update(stale.id, set_fields(lease_until=time.time() - 1))
    assert await store.expired_leases() == [stale.id]


async def test_requeue_then_claim_again_counts_a_second_attempt(store: JobStore) -> None:
    record = new_record()
    await store.create(record, None)
    first = await store.claim(lease_seconds=30)
    assert first is not None and first.attempts == 1
    await store.update(record.id, set_fields(status=JobStatus.QUEUED, lease_until=None))
    await store.requeue(record.id)
    assert await store.expired_leases() == []
    again = await store.claim(lease_seconds=30)
    assert again is not None and again.id == record.id
    assert again.status is JobStatus.RUNNING and again.attempts == 2
    assert again.started == first.started  # the first start is kept
    assert await store.claim(lease_seconds=30) is None


async def test_finished_jobs_past_retention_are_gone(store: JobStore) -> None:
    records = [new_record(i) for i in range(5)]
    for record in records:
        await store.create(record, b"audio")
    kept = await store.update(records[0].id, lambda r: succeed(r, {"text": "kept"}, RETENTION))
    assert kept is not None and kept.status is JobStatus.DONE and kept.expires is not None
    assert await store.get(records[0].id) == kept
    for old in (records[4], records[2]):  # the newest one and one in the middle
        await store.update(old.id, lambda r: succeed(r, {"text": "old"}, -10.0))
        assert await store.get(old.id) is None
    expected = [records[3].id, records[1].id, records[0].id]
    # Pages continue where the previous one stopped, with expired jobs among them.
    assert await all_pages(store, "google", 2) == expected
    assert await all_pages(store, "google", 10) == expected
    await store.purge()
    assert await store.get(records[4].id) is None
    assert await all_pages(store, "google", 1) == expected


async def test_page_is_newest_first_paginated_and_per_kind(store: JobStore) -> None:
    google = [new_record(i) for i in range(5)]
    prosa = [new_record(10 + i, kind="prosa") for i in range(2)]
    for record in google + prosa:
        await store.create(record, None)
    first, token = await store.page("google", 2, None)
    assert [r.id for r in first] == [google[4].id, google[3].id]
    assert first[0] == google[4]
    assert token is not None
    assert await all_pages(store, "google", 2) == [r.id for r in reversed(google)]
    assert await all_pages(store, "google", 5) == [r.id for r in reversed(google)]
    records, token = await store.page("prosa", 2, None)
    assert [r.id for r in records] == [prosa[1].id, prosa[0].id] and token is None
    assert await store.page("yandex", 10, None) == ([], None)


async def test_job_cancelled_while_queued_is_never_claimed(store: JobStore) -> None:
    cancelled = new_record(0)
    await store.create(cancelled, b"audio")
    await store.update(cancelled.id, set_fields(status=JobStatus.CANCELLED))
    # A lease that is already over would show up in expired_leases() at once if one was left behind.
    assert await store.claim(lease_seconds=-1) is None
    assert await store.expired_leases() == []
    stored = await store.get(cancelled.id)
    assert stored is not None and stored.status is JobStatus.CANCELLED and stored.attempts == 0

    # Cancelled jobs at the head of the queue do not hide the queued ones behind them.
    head, waiting = new_record(1), new_record(2)
    await store.create(head, None)
    await store.create(waiting, None)
    await store.update(head.id, lambda r: fail(r, Cancelled("cancelled by the client"), RETENTION))
    claimed = await store.claim(lease_seconds=30)
    assert claimed is not None and claimed.id == waiting.id
    assert await store.claim(lease_seconds=30) is None
    assert await store.expired_leases() == []


# -- store specifics -------------------------------------------------------------------------------


async def test_sqlite_reopened_takes_over_running_jobs(tmp_path: Path) -> None:
    path = tmp_path / "data" / "jobs.sqlite3"
    first = SqliteJobStore(path)
    running, queued = new_record(0), new_record(1)
    await first.create(running, b"one")
    await first.create(queued, b"two")
    claimed = await first.claim(lease_seconds=3600)
    assert claimed is not None and claimed.id == running.id
    await first.close()

    shared = SqliteJobStore(path, takeover_on_start=False)
    assert await shared.expired_leases() == []  # the lease is an hour away
    await shared.close()

    second = SqliteJobStore(path)
    try:
        assert await second.expired_leases() == [running.id]
        stored = await second.get(running.id)
        assert stored is not None and stored.status is JobStatus.RUNNING and stored.attempts == 1
        assert await second.audio(running.id) == b"one"
        again = await second.claim(lease_seconds=30)
        assert again is not None and again.id == queued.id
        assert await second.audio(queued.id) == b"two"
    finally:
        await second.close()


async def test_a_sqlite_store_is_held_by_one_process(tmp_path: Path) -> None:
    """L8: a second server on the same file (another process, or a second store here) is refused
    at start instead of claiming the first one's jobs; closing hands the file on."""
    path = tmp_path / "jobs.sqlite3"
    first = SqliteJobStore(path)
    script = (
        "import sys\nfrom pathlib import Path\nfrom app.core.jobstore_sqlite import SqliteJobStore\n"
        "from app.core.errors import Unavailable\n"
        "try:\n    SqliteJobStore(Path(sys.argv[1]))\nexcept Unavailable as exc:\n    print(exc.message)\n"
        "    sys.exit(3)\n"
    )
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path), stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parent.parent
    )
    out, _ = await other.communicate()
    assert other.returncode == 3, out
    assert b"another server process holds the job store" in out and str(path).encode() in out
    with pytest.raises(Unavailable, match="ASR_REDIS_URL"):
        SqliteJobStore(path)
    await first.create(new_record(0), None)
    await first.close()
    second = SqliteJobStore(path)
    try:
        claimed = await second.claim(lease_seconds=30)
        assert claimed is not None and claimed.status is JobStatus.RUNNING
        assert await second.claim(lease_seconds=30) is None
    finally:
        await second.close()


async def test_redis_replicas_share_jobs(request: pytest.FixtureRequest) -> None:
    prefix = f"t{uuid4().hex}:"
    one, two = redis_store(request, prefix), redis_store(request, prefix)
    try:
        records = [new_record(i) for i in range(4)]
        for record in records:
            await one.create(record, record.id.encode())
        assert await two.get(records[0].id) == records[0]
        assert await two.audio(records[0].id) == records[0].id.encode()
        claimed = await two.claim(lease_seconds=30)
        assert claimed is not None and claimed.id == records[0].id
        assert await one.get(records[0].id) == claimed
        both = await asyncio.gather(one.claim(30), two.claim(30), one.claim(30), two.claim(30))
        assert sorted(c.id for c in both if c is not None) == sorted(r.id for r in records[1:])
        page, token = await one.page("google", 10, None)
        assert [r.id for r in page] == [r.id for r in reversed(records)] and token is None
        other = redis_store(request)  # another prefix: another deployment
        try:
            assert await other.get(records[0].id) is None
            assert await other.page("google", 10, None) == ([], None)
        finally:
            await other.close()
    finally:
        await one.close()
        await two.close()


# -- the runner ----------------------------------------------------------------------------------------


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SpeechService]:
    limits = DecodeLimits(max_seconds=3600, max_decoded_bytes=2**31, max_channels=8, max_sample_rate=192000)
    config = PoolConfig(
        workers=1,
        queue_size=4,
        retry_after=1,
        job_retries=0,
        worker_max_jobs=0,
        pipeline=PipelineConfig(limits=limits, tmp_dir=tmp_path, block_seconds=300),
    )
    # One segment per second of audio, 0.1 s each: 3 s of audio takes 0.3 s, 80 s takes 8 s.
    pool = DecoderPool(FakeEngineFactory(seconds_per_segment=0.1, segment_seconds=1.0), config)
    await pool.start()
    yield SpeechService(fake_registry(), pool, max_alternatives=30)
    await pool.stop()


@asynccontextmanager
async def stored_audio(record: JobRecord, store: JobStore) -> AsyncIterator[AudioInput]:
    data = await store.audio(record.id)
    assert data is not None
    yield AudioInput(data=data)


RunnerFactory = Callable[[], JobRunner]


@pytest.fixture
async def make_runner(store: JobStore, service: SpeechService) -> AsyncIterator[RunnerFactory]:
    runners: list[JobRunner] = []

    def make() -> JobRunner:
        runner = JobRunner(store, service, lambda record, s: stored_audio(record, s), CONFIG)
        runners.append(runner)
        runner.start()
        return runner

    yield make
    for runner in runners:
        await runner.stop()


async def queue_job(store: JobStore, seconds: float, audio: bytes | None = None) -> JobRecord:
    data = audio if audio is not None else wav_bytes(np.zeros(int(seconds * 16000), np.float32))
    request = TranscriptionRequest(audio=AudioInput(data=data), model="whisper-base")
    record = JobRecord(id=uuid4().hex, kind="google", request=codec.request_to_dict(request))
    await store.create(record, data)
    return record


async def wait_for(
    store: JobStore, job_id: str, check: Callable[[JobRecord], bool], timeout: float = 20.0
) -> JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = await store.get(job_id)
        if record is not None and check(record):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not get there in {timeout} s: {record}")
        await asyncio.sleep(0.05)


def finished(record: JobRecord) -> bool:
    return record.status.terminal


async def crashed_runner_job(store: JobStore, attempts: int) -> JobRecord:
    """A job a runner claimed, then died with: RUNNING, `attempts` tries, its lease over."""
    record = await queue_job(store, 3)
    claimed = await store.claim(lease_seconds=CONFIG.lease_seconds)
    assert claimed is not None and claimed.id == record.id
    await store.update(record.id, set_fields(attempts=attempts, lease_until=time.time() - 1))
    assert await store.expired_leases() == [record.id]
    return record


def texts(record: JobRecord) -> list[str]:
    assert record.result is not None
    return [s.text for s in codec.transcript_from_dict(record.result).segments]


async def test_runner_completes_a_queued_job(store: JobStore, make_runner: RunnerFactory) -> None:
    record = await queue_job(store, 3)
    runner = make_runner()
    runner.notify()
    done = await wait_for(store, record.id, finished)
    assert done.status is JobStatus.DONE, done.error
    assert texts(done) == ["Segment 0, fake.", "Segment 1, fake.", "Segment 2, fake."]
    transcript = codec.transcript_from_dict(done.result or {})
    assert transcript.model == "whisper-base" and transcript.duration == pytest.approx(3)
    assert done.progress == 100.0 and done.attempts == 1 and done.error is None
    assert done.lease_until is None and done.finished is not None and done.started is not None
    assert done.expires == pytest.approx(done.finished + RETENTION)
    assert await store.expired_leases() == []


async def test_a_record_from_another_release_still_loads_runs_and_renders(
    store: JobStore, make_runner: RunnerFactory
) -> None:
    """L10: a rolling deploy or a rollback meets records with fields this release lacks, or
    without ones it added. They load (unknown dropped, missing defaulted) and run to the end."""
    data = wav_bytes(np.zeros(3 * 16000, np.float32))
    request = codec.request_to_dict(TranscriptionRequest(audio=AudioInput(data=data), model="whisper-base"))
    del request["temperature"], request["intervals"]  # fields a later release added
    request["speaker_labels"] = True  # a field a later release has and this one does not
    newer = JobRecord(id=uuid4().hex, kind="google", request=request).to_dict()
    newer.update(v=99, priority_hint="high")
    del newer["progress"]
    record = JobRecord.from_dict(newer)
    assert record.v == 99 and record.progress == 0.0
    await store.create(record, data)
    make_runner().notify()
    done = await wait_for(store, record.id, finished)
    assert done.status is JobStatus.DONE, done.error
    assert done.result is not None
    for segment in done.result["segments"]:
        segment["speaker"] = 2
        del segment["seek"]
    done.result["diarized"] = True
    assert texts(done) == ["Segment 0, fake.", "Segment 1, fake.", "Segment 2, fake."]
    assert JobRecord(id="x", kind="google", request={}).v == 1


async def test_runner_requeues_a_job_whose_runner_died(store: JobStore, make_runner: RunnerFactory) -> None:
    record = await crashed_runner_job(store, attempts=1)
    make_runner()
    done = await wait_for(store, record.id, finished)
    assert done.status is JobStatus.DONE, done.error
    assert done.attempts == 2
    assert texts(done) == ["Segment 0, fake.", "Segment 1, fake.", "Segment 2, fake."]
    assert await store.expired_leases() == []


async def test_runner_fails_a_job_interrupted_too_often(store: JobStore, make_runner: RunnerFactory) -> None:
    record = await crashed_runner_job(store, attempts=CONFIG.max_attempts)
    make_runner()
    failed = await wait_for(store, record.id, finished)
    assert failed.status is JobStatus.FAILED and failed.result is None
    assert failed.error is not None and failed.error["kind"] == "internal"
    assert "interrupted 2 times" in failed.error["message"]
    assert failed.expires is not None and failed.lease_until is None
    assert await store.expired_leases() == []


async def test_runner_fails_a_job_whose_audio_is_not_audio(store: JobStore, make_runner: RunnerFactory) -> None:
    record = await queue_job(store, 0, audio=b"this is certainly not audio " * 100)
    make_runner().notify()
    failed = await wait_for(store, record.id, finished)
    assert failed.status is JobStatus.FAILED and failed.result is None
    assert failed.error == {
        "kind": "unsupported_media",
        "kinds": ["unsupported_media", "invalid_argument", "internal"],
        "message": UNDECODABLE,
        "param": "file",
    }
    assert failed.attempts == 1


async def running(store: JobStore, record: JobRecord) -> JobRecord:
    started = await wait_for(store, record.id, lambda r: r.status is not JobStatus.QUEUED)
    assert started.status is JobStatus.RUNNING
    await asyncio.sleep(0.3)  # a few segments into the decode
    return started


async def test_stopped_runner_hands_its_job_back(store: JobStore, make_runner: RunnerFactory) -> None:
    record = await queue_job(store, 80)
    runner = make_runner()
    runner.notify()
    await running(store, record)
    await asyncio.wait_for(runner.stop(), 10)
    back = await store.get(record.id)
    assert back is not None and back.status is JobStatus.QUEUED
    assert back.attempts == 0 and back.lease_until is None and back.result is None
    assert await store.expired_leases() == []
    # Not lost: the next runner (after a restart, or another replica) takes it.
    claimed = await store.claim(lease_seconds=30)
    assert claimed is not None and claimed.id == record.id and claimed.attempts == 1


async def test_job_cancelled_while_running_stops(store: JobStore, make_runner: RunnerFactory) -> None:
    long, short = await queue_job(store, 80), await queue_job(store, 3)
    make_runner().notify()
    await running(store, long)
    cancelled_at = time.monotonic()
    await store.update(long.id, lambda r: fail(r, Cancelled("the client cancelled the job"), RETENTION))
    # The long decode (8 s) is aborted: the decoder is free for the next job long before it would end.
    done = await wait_for(store, short.id, finished, timeout=6)
    assert done.status is JobStatus.DONE, done.error
    assert time.monotonic() - cancelled_at < 6
    after = await store.get(long.id)
    assert after is not None and after.status is JobStatus.CANCELLED and after.result is None
    assert after.error is not None and after.error["kind"] == "cancelled"
    assert await store.expired_leases() == []


async def test_runner_drops_a_job_taken_over_by_another_runner(store: JobStore, make_runner: RunnerFactory) -> None:
    long, short = await queue_job(store, 80), await queue_job(store, 3)
    make_runner().notify()
    started = await running(store, long)
    # Our lease ran out (say the store was unreachable); another replica requeued and claimed the job.
    taken_at = time.monotonic()
    await store.update(long.id, set_fields(attempts=started.attempts + 1, lease_until=time.time() + 30))
    done = await wait_for(store, short.id, finished, timeout=6)
    assert done.status is JobStatus.DONE, done.error
    assert time.monotonic() - taken_at < 6
    other = await store.get(long.id)
    assert other is not None and other.status is JobStatus.RUNNING and other.result is None
    assert other.attempts == started.attempts + 1


class StuckStore(SqliteJobStore):
    """A store whose claim does not answer and swallows the first cancellation (a wedged connection)."""

    async def claim(self, lease_seconds: float) -> JobRecord | None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)  # the loop's own teardown cancels this one
        return None


async def test_stop_returns_even_when_the_store_hangs(tmp_path: Path, service: SpeechService) -> None:
    store = StuckStore(tmp_path / "stuck.sqlite3")
    runner = JobRunner(store, service, lambda record, s: stored_audio(record, s), CONFIG)
    runner.start()
    await asyncio.sleep(0.1)
    await asyncio.wait_for(runner.stop(timeout=0.5), 5)
    await store.close()


# -- leases kept from claim to finish, fenced writes, woken waiters ---------------------------------------


async def test_a_download_longer_than_the_lease_is_not_taken_for_a_dead_runner(
    store: JobStore, service: SpeechService
) -> None:
    """H1: loading the audio outlasts the 2 s lease; the runner keeps renewing, the job runs once."""
    loads = []

    @asynccontextmanager
    async def slow_download(record: JobRecord, s: JobStore) -> AsyncIterator[AudioInput]:
        loads.append(record.attempts)
        await asyncio.sleep(CONFIG.lease_seconds * 2.5)
        async with stored_audio(record, s) as audio:
            yield audio

    config = RunnerConfig(concurrency=2, lease_seconds=2, max_attempts=3, retention_seconds=60, poll_seconds=0.1)
    runner = JobRunner(store, service, slow_download, config)
    record = await queue_job(store, 3)
    runner.start()
    try:
        done = await wait_for(store, record.id, finished, timeout=30)
    finally:
        await runner.stop()
    assert done.status is JobStatus.DONE and done.attempts == 1, done.error
    assert loads == [1]


async def test_a_runner_that_lost_its_claim_writes_nothing(store: JobStore) -> None:
    """M1: the first claim's lease ran out and a second claim took the job; the first one's late
    result and late failure are both refused."""
    record = await queue_job(store, 3)
    first = await store.claim(lease_seconds=30)
    assert first is not None
    await store.update(record.id, set_fields(status=JobStatus.QUEUED))
    await store.requeue(record.id)
    second = await store.claim(lease_seconds=30)
    assert second is not None and second.attempts == first.attempts + 1
    await store.update(record.id, fenced(first, lambda r: succeed(r, {"segments": []}, 60)))
    await store.update(record.id, fenced(first, lambda r: fail(r, Cancelled("late"), 60)))
    current = await store.get(record.id)
    assert current is not None and current.status is JobStatus.RUNNING and current.attempts == second.attempts
    await store.update(record.id, fenced(second, lambda r: succeed(r, {"segments": []}, 60)))
    assert (await store.get(record.id)).status is JobStatus.DONE  # type: ignore[union-attr]


async def test_a_cancelled_running_job_stops_decoding(store: JobStore, make_runner: RunnerFactory) -> None:
    record = await queue_job(store, 80)  # 8 s of fake decoding
    runner = make_runner()
    runner.notify()
    await wait_for(store, record.id, lambda r: r.status is JobStatus.RUNNING)
    await store.update(record.id, lambda r: cancel(r, 60))
    await asyncio.sleep(CONFIG.lease_seconds)  # the next renewal finds the job is no longer its own
    assert runner.service.pool.in_flight == 0
    assert (await store.get(record.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


async def test_a_waiter_is_woken_when_the_job_ends_not_at_the_next_poll(
    store: JobStore, service: SpeechService
) -> None:
    slow_poll = RunnerConfig(concurrency=1, lease_seconds=2, max_attempts=2, retention_seconds=60, poll_seconds=30)
    runner = JobRunner(store, service, lambda record, s: stored_audio(record, s), slow_poll)
    record = await queue_job(store, 3)
    runner.start()
    runner.notify()
    try:
        done = await asyncio.wait_for(runner.wait(record.id, timeout=60), 10)  # far less than one poll
    finally:
        await runner.stop()
    assert done is not None and done.status is JobStatus.DONE
