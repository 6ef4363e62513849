"""Structured cancellation in the HTTP plumbing: the race between work and disconnect goes both
ways, and the loser is awaited before the caller goes on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from app.core.errors import Cancelled
from app.web import until_disconnect
from tests.conftest import AppFactory, running_app


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


async def test_a_client_gone_while_sending_its_body_is_cancelled_not_a_500(
    make_fake_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """M10: ClientDisconnect while the body is read is the client's doing: 499 Cancelled, no traceback."""
    app = make_fake_app()
    sent: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b'{"config": {', "more_body": True}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/speech:recognize", "raw_path": b"/v1/speech:recognize", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
        "client": ("127.0.0.1", 1), "server": ("test", 80),
    }  # fmt: skip
    async with running_app(app):
        await app(scope, receive, send)
    assert next(m["status"] for m in sent if m["type"] == "http.response.start") == 499
    assert "unhandled error" not in caplog.text and "Traceback" not in caplog.text
