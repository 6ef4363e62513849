"""One realtime WebSocket connection: client events in, the core live session, server events out.

The connection's tasks (the writer, the pump from the live session) and the live session itself
share one exit: when the reader stops (the client left, the session expired or idled, a fatal
error), the TaskGroup cancels the writer and the pump and the live session cancels its decodes.
A bad event is an error event and the connection stays open.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from typing import Any

from fastapi import WebSocket

from app.core.errors import InvalidArgument, Overloaded, SttError
from app.core.live import Committed, Done, Failed, Final, LiveSession, Partial
from app.core.service import SpeechService
from app.metrics import Metrics
from app.protocols.realtime.config import Dialect, RealtimeConfig, new_id
from app.protocols.realtime.events import EventRenderer, error_event
from app.protocols.realtime.schemas import EVENTS, Append, ClientEvent, SessionUpdate, TranscriptionSessionUpdate
from app.protocols.shared import parse_wire
from app.protocols.websocket import GONE
from app.settings import Settings
from app.state import live_config

OFF_LOOP_BYTES = 64 * 1024  # bigger messages are parsed and decoded in a thread


class Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class RealtimeConnection:
    def __init__(
        self,
        websocket: WebSocket,
        config: RealtimeConfig,
        service: SpeechService,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.ws = websocket
        self.config = config
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.renderer = EventRenderer(config.dialect)
        self.live: LiveSession | None = None
        self.outbox: asyncio.Queue[dict[str, Any] | Close] = asyncio.Queue()
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._committed: dict[int, float] = {}
        self._opened = time.monotonic()
        self._first_partial: float | None = None

    async def run(self) -> None:
        async with self._stack, asyncio.TaskGroup() as group:
            self._group = group
            writer = group.create_task(self._writer())
            self._send(self._first_event())
            try:
                await self._reader()
            except Close as close:
                self.outbox.put_nowait(close)
                await asyncio.wait({writer}, timeout=5)
            writer.cancel()
            for task in list(self._tasks):  # the pump and a finish: they end with the connection
                task.cancel()

    def _spawn(self, work: Any) -> None:
        assert self._group is not None
        task = self._group.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reading --------------------------------------------------------------------------------------

    async def _reader(self) -> None:
        expires = self._opened + self.settings.realtime_session_seconds
        while True:
            left = expires - time.monotonic()
            try:
                message = await asyncio.wait_for(self.ws.receive(), min(left, self.settings.realtime_idle_seconds))
            except TimeoutError:
                expired = time.monotonic() >= expires
                why = (
                    f"Your session hit the maximum duration of {self.settings.realtime_session_seconds:g} seconds."
                    if expired
                    else f"No message for {self.settings.realtime_idle_seconds:g} seconds; closing the session."
                )
                self._send({**error_event(InvalidArgument(why)), "error": _error_body("session_expired", why)})
                raise Close(1000, "session expired" if expired else "idle") from None
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                text = data.decode("utf-8", "replace")
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        event_id = None
        try:
            raw = await asyncio.to_thread(json.loads, text) if len(text) > OFF_LOOP_BYTES else json.loads(text)
            if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
                raise InvalidArgument("The 'type' field is missing.", param="type")
            event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
            model = EVENTS.get(raw["type"])
            if model is None:
                supported = ", ".join(f"'{name}'" for name in EVENTS)
                raise InvalidArgument(
                    f"Invalid value: '{raw['type']}'. Supported values are: {supported}.", param="type"
                )
            await self._apply(parse_wire(model, raw))
        except json.JSONDecodeError:
            self._send(error_event(InvalidArgument("The event is not valid JSON."), event_id))
        except Overloaded as exc:
            self._send(error_event(exc, event_id))
            raise Close(1013, "the decoders are behind this stream") from None
        except SttError as exc:
            self._send(error_event(exc, event_id))

    async def _apply(self, event: ClientEvent) -> None:
        if isinstance(event, SessionUpdate | TranscriptionSessionUpdate):
            await self._update(event)
        elif isinstance(event, Append):
            data = await self._audio(event.audio)
            live = await self._live()
            await live.feed(data)
        elif event.type == "input_audio_buffer.commit":
            if self.config.dialect is not Dialect.NIM:  # a NIM client commits every chunk
                (await self._live()).commit()
        elif event.type == "input_audio_buffer.clear":
            if self.live is None:
                self._send({"type": "input_audio_buffer.cleared", "event_id": new_id("event")})
            else:
                self.live.clear()
        elif event.type == "input_audio_buffer.done":
            self._spawn((await self._live()).finish())

    async def _update(self, event: SessionUpdate | TranscriptionSessionUpdate) -> None:
        if isinstance(event, SessionUpdate):
            updated = self.config.apply_ga(event.session)
            reply = "session.updated"
        else:
            updated = self.config.apply_beta(event.session)
            reply = "transcription_session.updated"
        self.service.prepare(updated.template())  # an unknown model or language is refused now
        if self.live is not None and (
            updated.audio_format != self.config.audio_format
            or updated.turn_detection != self.config.turn_detection
            or updated.template() != self.config.template()
        ):
            raise InvalidArgument(
                "The session's audio format, turn detection and transcription settings cannot change once "
                "audio has arrived; open a new session.",
                param="session",
            )
        self.config = updated
        self.renderer.dialect = updated.dialect
        self._send({"type": reply, "event_id": new_id("event"), "session": updated.session_object()})

    async def _audio(self, text: str) -> bytes:
        def decode() -> bytes:
            return base64.b64decode(text, validate=True)

        try:
            return await asyncio.to_thread(decode) if len(text) > OFF_LOOP_BYTES else decode()
        except (binascii.Error, ValueError):
            raise InvalidArgument("Invalid 'audio': expected base64-encoded audio bytes.", param="audio") from None

    async def _live(self) -> LiveSession:
        if self.live is None:
            config = live_config(self.settings)
            template = self.service.prepare(self.config.template())
            session = LiveSession(
                self.service,
                template,
                config,
                self.config.turn_detection,
                audio_format=self.config.audio_format,
                spare=lambda: self.service.pool.idle,
            )
            self.live = await self._stack.enter_async_context(session)
            self._spawn(self._pump(session))
        return self.live

    # -- writing --------------------------------------------------------------------------------------

    def _first_event(self) -> dict[str, Any]:
        if self.config.dialect is Dialect.NIM:
            conversation = {"id": new_id("conv"), "object": "realtime.conversation"}
            return {"type": "conversation.created", "event_id": new_id("event"), "conversation": conversation}
        kind = "session.created" if self.config.dialect is Dialect.GA else "transcription_session.created"
        return {"type": kind, "event_id": new_id("event"), "session": self.config.session_object()}

    def _send(self, event: dict[str, Any]) -> None:
        self.outbox.put_nowait(event)

    async def _pump(self, session: LiveSession) -> None:
        while True:
            event = await session.events.get()
            now = time.monotonic()
            if isinstance(event, Partial) and self._first_partial is None:
                self._first_partial = now
                self.metrics.live_first_partial.observe(now - self._opened)
            elif isinstance(event, Committed):
                self._committed[event.item] = now
            elif isinstance(event, Final | Failed) and event.item in self._committed:
                self.metrics.live_final_latency.observe(now - self._committed.pop(event.item))
            for wire in self.renderer.render(event):
                self._send(wire)
            if isinstance(event, Done):
                return

    async def _writer(self) -> None:
        with contextlib.suppress(*GONE):  # the client left: the reader sees it and ends the rest
            while True:
                item = await self.outbox.get()
                if isinstance(item, Close):
                    await self.ws.close(item.code, item.reason)
                    return
                await self.ws.send_text(json.dumps(item, ensure_ascii=False))


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"type": "invalid_request_error", "code": code, "message": message, "param": None, "event_id": None}
