"""recognize_audio: the Open API's bidirectional stream, over the core live session.

Each Message carries s16le 16 kHz mono audio for a `user`. While `speaking` is true the audio is
only collected; a message with `speaking=false` ends the user's utterance and is answered with
that user's cumulative transcript (no punctuation or ITN, as the seed); `isEnd` is answered with
action "terminate" and drops the user. Every user of a stream is one live session with manual
turns (the commit is the pause the client saw), so utterances decode while later audio arrives
and answers come out in the order the messages asked for them.

Not the seed's: its per-user state is global to the server, so any stream naming a user reads and
extends that user's transcript; here it belongs to the stream. Extension, off unless the call's
metadata says `partials: true`: while a user speaks, interim text of the open utterance comes as
action "partial" (the cumulative text so far plus the interim words)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.errors import InvalidArgument, OutOfRange, SttError
from app.core.live import Failed, Final, LiveSession, Partial
from app.core.live_audio import LiveFormat
from app.core.types import TranscriptionRequest
from app.protocols.ekstep.messages import Response
from app.protocols.ekstep.speech import OpenSpeech, first_error, known_language, recogniser_language
from app.state import live_config, live_slot

BYTES_PER_MS = 32
"""16 kHz s16le. A pause after less than the session's min_commit_ms of audio is answered with the
transcript unchanged (the seed decodes it to nothing)."""


@dataclass
class _User:
    name: str
    language: str
    """The API's code, echoed in every answer."""
    live: LiveSession | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    finals: dict[int, asyncio.Future[str]] = field(default_factory=dict)
    text: str = ""
    """The cumulative transcript (what the seed answers)."""
    uncommitted: int = 0
    """Bytes since the last commit."""


class AudioStream:
    def __init__(self, speech: OpenSpeech, *, partials: bool, language: str | None) -> None:
        self.speech = speech
        self.state = speech.state
        self.partials = partials
        self.default_language = language
        self.users: dict[str, _User] = {}
        self.order: asyncio.Queue[Awaitable[Any] | None] = asyncio.Queue()
        self.out: asyncio.Queue[Any] = asyncio.Queue()
        self.count = 0

    async def responses(self, messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
        work = asyncio.ensure_future(self._run(messages))
        try:
            while True:
                item = await self.out.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)

    async def _run(self, messages: AsyncIterator[Any]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(self._write())
                await self._read(messages, group)
                self.order.put_nowait(None)
                await writer
                for user in self.users.values():
                    if user.task is not None:
                        user.task.cancel()
        except BaseExceptionGroup as failed:
            self.out.put_nowait(first_error(failed))
        except Exception as exc:
            self.out.put_nowait(exc)
        else:
            self.out.put_nowait(None)

    async def _read(self, messages: AsyncIterator[Any], group: asyncio.TaskGroup) -> None:
        settings = self.speech.settings
        incoming = aiter(messages)
        while True:
            try:
                message = await asyncio.wait_for(anext(incoming), settings.realtime_idle_seconds)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise OutOfRange(f"no message for {settings.realtime_idle_seconds:g} s") from None
            user = self.users.get(message.user)
            if message.isEnd:
                code = user.language if user else known_language(message.language or self.default_language or "en")
                self.order.put_nowait(self._terminate(message.user, code))
                continue
            if user is None:
                user = await self._open(message, group)
            await user.ready.wait()
            live = user.live
            assert live is not None
            if message.audio:
                await live.feed(message.audio)
                user.uncommitted += len(message.audio)
                if live.seconds_received > settings.realtime_session_seconds:
                    raise OutOfRange(f"user {user.name!r} passed {settings.realtime_session_seconds:g} s of audio")
            if not message.speaking:
                final: asyncio.Future[str] | None = None
                if user.uncommitted >= live.config.min_commit_ms * BYTES_PER_MS:
                    user.uncommitted = 0
                    final = user.finals[live.commit().item] = asyncio.get_running_loop().create_future()
                self.order.put_nowait(self._pause(user, final))

    async def _open(self, message: Any, group: asyncio.TaskGroup) -> _User:
        if len(self.users) >= self.speech.settings.openspeech_stream_max_users:
            raise InvalidArgument(
                f"a stream carries at most {self.speech.settings.openspeech_stream_max_users} users", param="user"
            )
        code = known_language(message.language or self.default_language or "en")
        whisper = recogniser_language(code, self.speech.multilingual())
        user = self.users[message.user] = _User(message.user, code)
        user.task = group.create_task(self._serve(user, whisper))
        return user

    async def _serve(self, user: _User, language: str) -> None:
        """The user's live session, for as long as the stream keeps the user."""
        async with live_slot(self.state) as service:
            template = service.prepare(TranscriptionRequest(language=language, punctuation=False))
            config = replace(live_config(self.speech.settings), manual_partials=self.partials)
            live = LiveSession(
                service, template, config, None, audio_format=LiveFormat(),
                spare=lambda: service.pool.idle, partials=self.partials,
            )  # fmt: skip
            async with live:
                user.live = live
                user.ready.set()
                while True:
                    event = await live.events.get()
                    if isinstance(event, Final):
                        waiting = user.finals.pop(event.item, None)
                        if waiting is not None:
                            waiting.set_result(event.transcript.text.strip())
                    elif isinstance(event, Failed):
                        raise event.error
                    elif isinstance(event, Partial) and self.partials and event.text.strip():
                        self.order.put_nowait(self._partial(user, event.text.strip()))

    async def _pause(self, user: _User, final: asyncio.Future[str] | None) -> Any:
        """The answer to speaking=false: the user's transcript, extended by the utterance it ended."""
        if final is not None:
            user.text = f"{user.text} {await final}".strip()
        self.count += 1
        body = {"transcription": user.text, "status": "OK", "id": f"{user.name}{self.count}", "success": True}
        return Response(transcription=json.dumps(body), user=user.name, action="True", language=user.language)

    async def _partial(self, user: _User, interim: str) -> Any:
        text = f"{user.text} {interim}".strip()
        body = {"transcription": text, "status": "OK", "id": f"{user.name}-partial", "success": True}
        return Response(transcription=json.dumps(body), user=user.name, action="partial", language=user.language)

    async def _terminate(self, name: str, language: str) -> Any:
        """Answered after every earlier answer; the user's session (if any) is closed."""
        user = self.users.pop(name, None)
        if user is not None and user.task is not None:
            user.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, SttError):
                await user.task
        self.count += 1
        body = {"id": self.count, "success": True}
        return Response(transcription=json.dumps(body), user=name, action="terminate", language=language)

    async def _write(self) -> None:
        while True:
            answer = await self.order.get()
            if answer is None:
                return
            self.out.put_nowait(await answer)
