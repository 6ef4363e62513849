"""The HTTP server: uvicorn's h11 protocol with the guards uvicorn lacks against slow or hostile clients.

- a connection cap (`ASR_MAX_CONNECTIONS`): past it a new connection gets 503 and is closed at once;
- a header timeout (`ASR_HEADER_TIMEOUT_SECONDS`): a request's head must be complete that long after
  the connection opens or the previous response ends (headers sent a byte a second are cut off);
- a header-block cap (`ASR_MAX_HEADER_BYTES`): a larger head is answered 431 and the connection closed;
- body progress (`ASR_BODY_MIN_BYTES` per `ASR_BODY_PROGRESS_SECONDS`): a body that trickles slower
  is cut off; periods in which the server itself stopped reading (backpressure) do not count;
- an idle keep-alive timeout (`ASR_KEEP_ALIVE_SECONDS`, uvicorn's own).

h11 rather than httptools: its state machine says where a request is (head, body, done).

Shutdown (SIGTERM), in three steps that match a Kubernetes pod's termination:
1. drain (`ASR_DRAIN_SECONDS`): readiness answers 503 while everything else is served as usual, so
   the endpoints controller takes the pod out of rotation before connections are refused;
2. grace (`ASR_GRACE_SECONDS`): new connections are refused, requests in flight go on;
3. release: running jobs are handed back to the queue and what is still decoding is answered with a
   retryable 503 in its protocol's envelope (never a 500), then the process exits.
A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.settings import Settings

log = logging.getLogger("asr.http")
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 40\r\nConnection: close\r\n\r\nThe request's header block is too large."
)


def guarded_protocol(settings: Settings) -> type[H11Protocol]:
    class GuardedH11Protocol(H11Protocol):
        header_timeout = settings.header_timeout_seconds
        max_header_bytes = settings.max_header_bytes
        max_connections = settings.max_connections
        body_period = settings.body_progress_seconds
        body_min_bytes = settings.body_min_bytes

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._head_bytes = 0
            self._tail = b""
            self._body_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None
            self._body_timer: asyncio.TimerHandle | None = None
            self._upgraded = False
            if len(self.connections) >= self.max_connections:
                log.warning("connection refused: %d open, the most allowed", len(self.connections))
                transport.write(BUSY)
                transport.close()
                return
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            if self.transport is not None:  # None: refused at the cap, never served
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:
                # Measured before h11 parses it: the head may arrive whole in one read.
                joined = self._tail + data
                end = joined.find(b"\r\n\r\n")
                size = self._head_bytes + (len(data) if end < 0 else end + 4 - len(self._tail))
                if size > self.max_header_bytes:
                    self._cancel_timers()
                    self.transport.write(TOO_LARGE)
                    self.transport.close()
                    return
                self._head_bytes, self._tail = size, joined[-3:]
            else:
                self._body_bytes += len(data)
            super().data_received(data)
            self._follow_state()

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            # The connection becomes a WebSocket: HTTP's header and body timers must not close it.
            self._upgraded = True
            self._cancel_timers()
            super().handle_websocket_upgrade(event)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._head_bytes, self._tail = 0, b""
                self._await_head()
                self._follow_state()

        def _follow_state(self) -> None:
            if self._upgraded:
                return
            state = self.conn.their_state
            if state is not h11.IDLE and self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            if state is h11.SEND_BODY and self._body_timer is None:
                self._body_bytes = 0
                self._body_timer = self.loop.call_later(self.body_period, self._check_body)

        def _await_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_overdue)

        def _head_overdue(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                if self._head_bytes:
                    log.warning("closing %s: request head not complete in %g s", self.client, self.header_timeout)
                self.transport.close()

        def _check_body(self) -> None:
            self._body_timer = None
            if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
                return
            if not self.flow.read_paused and self._body_bytes < self.body_min_bytes:
                log.warning(
                    "closing %s: %d body bytes in %g s, fewer than %d",
                    self.client,
                    self._body_bytes,
                    self.body_period,
                    self.body_min_bytes,
                )
                self.transport.close()
                return
            self._body_bytes = 0
            self._body_timer = self.loop.call_later(self.body_period, self._check_body)

        def _cancel_timers(self) -> None:
            for timer in (self._head_timer, self._body_timer):
                if timer is not None:
                    timer.cancel()
            self._head_timer = self._body_timer = None

    return GuardedH11Protocol


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain and release steps of the module docstring."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain_seconds: float,
        grace_seconds: float,
        on_drain: Callable[[], None],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(config)
        self.drain_seconds, self.grace_seconds = drain_seconds, grace_seconds
        self.on_drain, self.release = on_drain, release
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exit_at is not None or self.should_exit:
            self.force_exit = self.should_exit  # a second signal while shutting down: at once
            self.should_exit = True
            return
        self._captured_signals.append(sig)
        self._exit_at = time.monotonic() + self.drain_seconds
        self.on_drain()
        log.info("signal %d: readiness is 503; stopping to accept in %g s", sig, self.drain_seconds)

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async def release_after_grace() -> None:
            await asyncio.sleep(self.grace_seconds)
            log.info("grace period over: handing jobs back and answering what is left with 503")
            await self.release()

        releasing = asyncio.create_task(release_after_grace())
        try:
            await super().shutdown(sockets)
        finally:
            releasing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await releasing


def serve(app: Any, settings: Settings) -> None:
    state = app.state
    server = DrainingServer(
        server_config(app, settings),
        drain_seconds=settings.drain_seconds,
        grace_seconds=settings.grace_seconds,
        on_drain=lambda: setattr(state, "draining", True),
        release=lambda: state.release(),
    )
    server.run()


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "http": guarded_protocol(settings),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "ws_max_size": settings.realtime_max_message_bytes,
        "ws_ping_interval": 20.0,  # dead peers are found; live clients answer pings themselves
        "ws_ping_timeout": 20.0,
        # h11's own cap sits far above ours (one read is at most 256 KiB), so ours answers first:
        # 431 rather than h11's 400.
        "h11_max_incomplete_event_size": settings.max_header_bytes + (1 << 20),
        # Past the release step, so the 503s written then are sent before uvicorn cancels anything.
        "timeout_graceful_shutdown": settings.grace_seconds + 5,
    }
    return uvicorn.Config(app, **(options | overrides))
