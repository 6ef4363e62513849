"""Structured cancellation in the HTTP plumbing: the race between work and disconnect goes both
ways, and the loser is awaited before the caller goes on."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request
from starlette.types import Message

from app.core.errors import Cancelled
from app.web import until_disconnect


def request_with(receive_after: float | None) -> Request:
    async def receive() -> Message:
        if receive_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(receive_after or 0)
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


def watched_work(log: list[str]):  # type: ignore[no-untyped-def]
    async def work() -> str:
        try:
            await asyncio.sleep(10)
            return "finished"
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # cleanup that must complete before the caller goes on
            log.append("cancelled")
            raise

    return work()


async def test_a_cancelled_caller_cancels_and_awaits_the_work() -> None:
    log: list[str] = []
    caller = asyncio.ensure_future(until_disconnect(request_with(None), watched_work(log)))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert log == ["cancelled"]


async def test_a_disconnect_cancels_and_awaits_the_work() -> None:
    log: list[str] = []
    with pytest.raises(Cancelled):
        await until_disconnect(request_with(0.05), watched_work(log))
    assert log == ["cancelled"]


async def test_work_that_ends_first_wins() -> None:
    async def quick() -> str:
        return "done"

    assert await until_disconnect(request_with(None), quick()) == "done"
