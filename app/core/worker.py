"""The decoder worker process: loads the models once, then runs one request at a time.

Messages to the parent: ("ready",), ("load_error", text), ("segment", job, Segment, done_s, total_s),
("done", job, Transcript), ("error", job, kind, message, param). From the parent: ("job", id, request)
or None to stop. A cancelled job is signalled through the shared `abort` value (the job id).
"""

from __future__ import annotations

import logging
import os
import signal
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized

from app.core.engine import EngineFactory, PipelineConfig, run_request
from app.core.errors import SttError, to_wire
from app.core.types import Segment

log = logging.getLogger("asr.worker")


def worker_main(
    conn: Connection,
    abort: Synchronized,  # type: ignore[type-arg]
    factory: EngineFactory,
    config: PipelineConfig,
    max_jobs: int,
) -> None:
    # The parent owns shutdown: Ctrl-C and SIGTERM reach it, and it stops workers in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        engine = factory()
    except Exception as exc:
        log.exception("worker %d could not load its engine", os.getpid())
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    served = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        _, job_id, request = message

        def emit(segment: Segment, done: float, total: float, job_id: int = job_id) -> None:
            conn.send(("segment", job_id, segment, done, total))

        def should_abort(job_id: int = job_id) -> bool:
            return bool(abort.value == job_id)

        try:
            transcript = run_request(engine, request, config, emit, should_abort)
            conn.send(("done", job_id, transcript))
        except SttError as exc:
            conn.send(("error", job_id, *to_wire(exc)))
        except Exception as exc:
            log.exception("job %d failed in worker %d", job_id, os.getpid())
            conn.send(("error", job_id, "internal", f"decoder failure: {type(exc).__name__}: {exc}", None))
        served += 1
        if max_jobs and served >= max_jobs:
            return
