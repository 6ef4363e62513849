"""The core live session on real speech and the real VAD, over a scripted service (fast): turns,
partials before finals, context and language carried, manual commits, the bounded backlog, and
cancellation of every decode when the session ends."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from app.core.errors import InvalidArgument, Overloaded, UnsupportedMedia
from app.core.live import (
    Cleared,
    Committed,
    Done,
    Event,
    Final,
    LiveConfig,
    LiveSession,
    Partial,
    SpeechStarted,
    SpeechStopped,
    TurnDetection,
)
from app.core.live_audio import LiveFormat
from app.core.live_decode import _fails
from app.core.live_text import without_repeats
from app.core.types import Lane, Segment, Transcript, TranscriptionRequest, Word
from tests.audio_tools import encode, read_pcm

TEMPLATE = TranscriptionRequest(model="fake", beam_size=5)
SILENCE = np.zeros(16000, np.float32)
CLIPS = ["ps_librivox_0870.wav", "ps_goforward.wav", "ps_librivox_0880.wav"]


@dataclass
class Call:
    seconds: float
    prompt: str | None
    language: str | None
    lane: Lane
    beam_size: int | None
    encoder_padding: float | None = None


class ScriptedService:
    """Answers each decode with 'text N' (N counting calls); `gate` holds decodes until set."""

    def __init__(self, language: str = "fr", gate: bool = False) -> None:
        self.calls: list[Call] = []
        self.language = language
        self.gate = asyncio.Event()
        if not gate:
            self.gate.set()
        self.cancelled = 0

    async def transcribe(self, request: TranscriptionRequest, lane: Lane = Lane.INTERACTIVE, **_: Any) -> Transcript:
        assert request.audio is not None and request.audio.data is not None
        seconds = len(request.audio.data) / 4 / 16000
        self.calls.append(
            Call(seconds, request.prompt, request.language, lane, request.beam_size, request.encoder_padding_seconds)
        )
        text = f"text {len(self.calls)}"
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        words: tuple[Word, ...] = ()
        if request.word_timestamps:  # the words at the end: a final's lead audio holds none
            words = (
                Word(seconds - 0.4, seconds - 0.2, " text", 0.9),
                Word(seconds - 0.2, seconds, f" {len(self.calls)}", 0.9),
            )
        segment = Segment(start=0.0, end=seconds, text=text, confidence=0.9, words=words)
        language = request.language or self.language
        return Transcript(segments=(segment,), language=language, language_probability=0.9, duration=seconds)


def _final_calls(service: ScriptedService) -> list[int]:
    return [i + 1 for i, c in enumerate(service.calls) if c.beam_size == 5]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def speech() -> np.ndarray:
    """Three real utterances, each followed by 1.5 s of silence."""
    return np.concatenate([part for clip in CLIPS for part in (read_pcm(clip), SILENCE, SILENCE[:8000])])


async def stream(session: LiveSession, pcm: np.ndarray, clock: Clock | None = None, chunk: float = 0.1) -> None:
    """`pcm` in `chunk`-second pieces at real-time pace on the fake clock."""
    step = int(chunk * 16000)
    for start in range(0, len(pcm), step):
        await session.append(pcm[start : start + step])
        if clock is not None:
            clock.now += chunk
        await asyncio.sleep(0)  # let decodes finish, as real time would


def drain(session: LiveSession) -> list[Event]:
    events = []
    while not session.events.empty():
        events.append(session.events.get_nowait())
    return events


TURN = TurnDetection(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=800)


@pytest.mark.parametrize("chunk", [0.02, 0.1, 0.13, 0.5])
async def test_utterances_end_at_silences_with_events_in_order(chunk: float) -> None:
    service, clock = ScriptedService(), Clock()
    async with LiveSession(service, TEMPLATE, LiveConfig(), TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, speech(), clock, chunk)
        await session.finish()
    events = drain(session)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.item for f in finals] == list(range(len(CLIPS)))
    assert isinstance(events[-1], Done)
    for item in range(len(CLIPS)):
        kinds = [type(e) for e in events if getattr(e, "item", None) == item and not isinstance(e, Partial)]
        assert kinds == [SpeechStarted, SpeechStopped, Committed, Final]
    # Each utterance's audio lies within its clip, in stream time, with the padding before it.
    committed = [e for e in events if isinstance(e, Committed)]
    starts = np.cumsum([0] + [len(read_pcm(c)) + 24000 for c in CLIPS])[:-1] * 1000 // 16000
    for c, clip_start in zip(committed, starts, strict=True):
        assert clip_start - 300 <= c.audio_start_ms <= clip_start + 1500
    for final, c in zip(finals, committed, strict=True):  # stream times, within the utterance
        assert c.audio_start_ms / 1000 - 0.01 <= final.transcript.segments[0].start < c.audio_end_ms / 1000
    # Each final decoded exactly its utterance's audio and the 3 s before it (less for the first).
    decoded = [c.seconds for c in service.calls if c.beam_size == 5]
    lengths = [(c.audio_end_ms - c.audio_start_ms) / 1000 for c in committed]
    expected = [n + min(3.0, c.audio_start_ms / 1000) for n, c in zip(lengths, committed, strict=True)]
    assert decoded == pytest.approx(expected, abs=0.002)
    assert [f.audio_seconds for f in finals] == pytest.approx(lengths, abs=0.002)
    assert all(f.transcript.text == f"text {i}" for f, i in zip(finals, _final_calls(service), strict=True))


async def test_partials_come_before_the_final_and_are_cheap() -> None:
    service, clock = ScriptedService(), Clock()
    config = LiveConfig(partial_interval_ms=500, partial_encoder_padding_seconds=3.0)
    async with LiveSession(service, TEMPLATE, config, TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, speech(), clock)
        await session.finish()
    events = drain(session)
    for item in range(len(CLIPS)):
        mine = [e for e in events if getattr(e, "item", None) == item]
        partials = [i for i, e in enumerate(mine) if isinstance(e, Partial)]
        final = next(i for i, e in enumerate(mine) if isinstance(e, Final))
        assert partials and max(partials) < final
    interim = [c for c in service.calls if c.beam_size == 1]
    assert interim and all(c.lane is Lane.LIVE for c in service.calls)
    assert all(c.beam_size == 5 for c in service.calls if c not in interim)
    # Partials are previews: their encoder sees 3 s of padding; finals get the engine's 30 s.
    assert all(c.encoder_padding == 3.0 for c in interim)
    assert all(c.encoder_padding is None for c in service.calls if c not in interim)


@pytest.mark.parametrize("partials", [True, False])
async def test_a_final_decoded_during_the_silence_is_the_one_sent(partials: bool) -> None:
    # The decode starts 400 ms into the 800 ms silence: on the audio heard then, which is all the
    # utterance's speech; the commit then sends that decode's text, with no second decode. A client
    # that asked for no partials (Google's interimResults off) gets early finals all the same.
    service, clock = ScriptedService(), Clock()
    config = LiveConfig(final_head_start_ms=400)
    live = LiveSession(service, TEMPLATE, config, TURN, clock=clock, partials=partials)  # type: ignore[arg-type]
    async with live as session:
        await stream(session, speech(), clock)
        await session.finish()
    events = drain(session)
    finals = [e for e in events if isinstance(e, Final)]
    committed = [e for e in events if isinstance(e, Committed)]
    stopped = [e for e in events if isinstance(e, SpeechStopped)]
    assert len(finals) == len(CLIPS) and session.early_finals_dropped == 0
    final_calls = [c for c in service.calls if c.beam_size == 5]
    assert len(final_calls) == len(CLIPS)  # one decode per utterance
    assert any(c.beam_size == 1 for c in service.calls) is partials
    for call, c, stop in zip(final_calls, committed, stopped, strict=True):
        heard_to = call.seconds - min(3.0, c.audio_start_ms / 1000) + c.audio_start_ms / 1000
        assert stop.audio_end_ms / 1000 + 0.35 <= heard_to <= stop.audio_end_ms / 1000 + 0.45
        assert c.audio_end_ms / 1000 - heard_to >= 0.35  # decoded that much before the commit
    assert [f.audio_seconds for f in finals] == pytest.approx(
        [(c.audio_end_ms - c.audio_start_ms) / 1000 for c in committed], abs=0.002
    )
    assert [f.transcript.text for f in finals] == [f"text {i}" for i in _final_calls(service)]


class StopsAtTheLead(ScriptedService):
    """Whisper as it was seen: with a final's lead audio, only the lead's words, then nothing."""

    async def transcribe(self, request: TranscriptionRequest, lane: Lane = Lane.INTERACTIVE, **_: Any) -> Transcript:
        transcript = await super().transcribe(request, lane)
        if not request.word_timestamps:
            return transcript
        segment = transcript.segments[0]
        lead_words = (Word(0.0, 0.2, " lead", 0.9), Word(0.2, 0.4, " words", 0.9))
        return replace(transcript, segments=(replace(segment, text="lead words", words=lead_words),))


async def test_a_final_whose_lead_ended_the_decode_is_decoded_again_alone() -> None:
    service, clock = StopsAtTheLead(), Clock()
    async with LiveSession(service, TEMPLATE, LiveConfig(), TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, speech(), clock)
        await session.finish()
    events = drain(session)
    finals = [e.transcript.text for e in events if isinstance(e, Final)]
    committed = [e for e in events if isinstance(e, Committed)]
    final_calls = [c for c in service.calls if c.beam_size == 5]
    # The first utterance has no lead: one decode. Each later one: with its lead (read: the finals
    # that end before the lead), then alone, with the previous final's text as the prompt, as a
    # final without lead audio is decoded.
    assert session.finals_without_lead == len(CLIPS) - 1
    assert len(final_calls) == 1 + 2 * (len(CLIPS) - 1)
    for n, c in enumerate(committed[1:], start=1):
        with_lead, alone = final_calls[2 * n - 1], final_calls[2 * n]
        utterance = (c.audio_end_ms - c.audio_start_ms) / 1000
        assert with_lead.seconds == pytest.approx(utterance + 3.0, abs=0.002)
        assert with_lead.prompt == (finals[n - 2] if n > 1 else None)
        assert alone.seconds == pytest.approx(utterance, abs=0.002) and alone.prompt == finals[n - 1]
    assert all(text and "lead" not in text for text in finals)


async def test_speech_after_a_short_pause_cancels_the_early_final() -> None:
    service, clock = ScriptedService(gate=True), Clock()
    config = LiveConfig(partial_interval_ms=100_000, final_head_start_ms=400)
    clip = read_pcm(CLIPS[0])[: 3 * 16000]  # cut mid-phrase: with the pause, 400-800 ms of quiet
    pcm = np.concatenate([clip, SILENCE[:4800], clip, SILENCE, SILENCE[:8000]])  # then a 0.3 s pause
    async with LiveSession(service, TEMPLATE, config, TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, pcm, clock)
        assert service.cancelled == 1 and session.early_finals_dropped == 1
        service.gate.set()
        await session.finish()
    events = drain(session)
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1 and finals[0].transcript.text == "text 2"
    assert len(service.calls) == 2 and service.calls[1].seconds > 2 * len(clip) / 16000


@pytest.mark.parametrize(("words", "prompts"), [(12, [None, None, "text 1"]), (0, [None, None, None])])
async def test_finals_hear_the_audio_before_them_and_keep_the_first_language(
    words: int, prompts: list[str | None]
) -> None:
    service, clock = ScriptedService(language="fr"), Clock()
    config = LiveConfig(partial_interval_ms=10**6, lead_prompt_words=words)
    async with LiveSession(service, TEMPLATE, config, TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, speech(), clock)
        await session.finish()
    finals = [e for e in drain(session) if isinstance(e, Final)]
    # The utterances after the first are decoded with the 3 s of audio before them: the context
    # they hear is not read too (read as well, Whisper copied it into the final). Only the words of
    # earlier finals that end before a final's lead are its prompt: the first final's for the third
    # (the second's end inside the third's lead).
    assert [c.prompt for c in service.calls] == prompts
    assert all(c.seconds > 4.5 for c in service.calls[1:])
    assert [c.language for c in service.calls] == [None, "fr", "fr"]
    assert [f.transcript.text for f in finals] == ["text 1", "text 2", "text 3"]


async def test_manual_turns_commit_and_clear() -> None:
    service = ScriptedService()
    async with LiveSession(service, TEMPLATE, LiveConfig(), None) as session:  # type: ignore[arg-type]
        await session.append(read_pcm("ps_goforward.wav")[:16000])
        committed = session.commit()
        assert committed.item == 0 and committed.audio_end_ms == 1000
        await session.append(np.zeros(800, np.float32))  # 50 ms
        with pytest.raises(InvalidArgument, match=r"buffer too small\. Expected at least 100ms"):
            session.commit()
        session.clear()
        with pytest.raises(InvalidArgument, match=r"buffer only has 0\.00ms"):
            session.commit()
        await session.append(read_pcm("ps_goforward.wav")[:8000])
        await session.finish()  # what is left is committed at the end
    events = drain(session)
    assert [type(e) for e in events if not isinstance(e, Final)] == [Committed, Cleared, Committed, Done]
    assert [e.item for e in events if isinstance(e, Final)] == [0, 1]
    assert [c.seconds for c in service.calls] == pytest.approx([1.0, 1.55])  # the short one with its lead


async def test_a_stream_outrunning_the_decoders_waits_then_fails_overloaded() -> None:
    service = ScriptedService(gate=True)  # nothing is ever decoded
    config = LiveConfig(max_backlog_seconds=3, backlog_wait_seconds=0.3)
    async with LiveSession(service, TEMPLATE, config, None) as session:  # type: ignore[arg-type]
        await session.append(read_pcm("ps_goforward.wav")[: 2 * 16000])
        session.commit()
        await session.append(np.zeros(2 * 16000, np.float32))  # 4 s behind: the next append waits
        waiting = asyncio.ensure_future(session.append(np.zeros(1600, np.float32)))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        with pytest.raises(Overloaded, match="ahead of the decoders"):
            await waiting
    assert service.cancelled == 1  # leaving the session cancelled the held final


async def test_leaving_the_session_cancels_every_decode() -> None:
    service, clock = ScriptedService(gate=True), Clock()
    async with LiveSession(service, TEMPLATE, LiveConfig(partial_interval_ms=200), TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, speech()[: 8 * 16000], clock)
        await asyncio.sleep(0.05)
        started = len(service.calls)
        assert started >= 2  # a final and a partial at least
    assert service.cancelled == started


async def test_a_long_utterance_is_cut_at_a_quiet_frame() -> None:
    service, clock = ScriptedService(), Clock()
    config = LiveConfig(max_utterance_seconds=4, partial_interval_ms=10**6)
    long_turn = TurnDetection(silence_duration_ms=3000)
    pcm = np.concatenate([read_pcm("ps_librivox_0870.wav"), read_pcm("ps_librivox_0880.wav"), SILENCE * 4])
    async with LiveSession(service, TEMPLATE, config, long_turn, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, pcm, clock)
        await session.finish()
    committed = [e for e in drain(session) if isinstance(e, Committed)]
    assert len(committed) >= 3
    assert all(c.audio_end_ms - c.audio_start_ms <= 4000 + 32 for c in committed[:-1])
    assert all(a.audio_end_ms == b.audio_start_ms for a, b in itertools.pairwise(committed))


async def test_a_short_noise_starts_no_utterance() -> None:
    service, clock = ScriptedService(), Clock()
    blip = read_pcm("ps_goforward.wav")[8000:9600]  # 100 ms of speech
    async with LiveSession(service, TEMPLATE, LiveConfig(), TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, np.concatenate([SILENCE, blip, SILENCE, SILENCE]), clock)
        await session.finish()
    assert [type(e) for e in drain(session)] == [Done] and service.calls == []


async def test_a_stream_faster_than_real_time_leaves_the_live_lane() -> None:
    """Live is for audio spoken now: an upload sent as fast as the network allows is not live."""
    lanes = {}
    pcm = np.tile(speech(), 4)  # about 60 s
    for name, paced in (("paced", True), ("rushed", False)):
        service, clock = ScriptedService(), Clock()
        config = LiveConfig(partial_interval_ms=10**6)
        async with LiveSession(service, TEMPLATE, config, TURN, clock=clock) as session:  # type: ignore[arg-type]
            await stream(session, pcm, clock if paced else None)
            await session.finish()
        lanes[name] = [call.lane for call in service.calls]
    assert set(lanes["paced"]) == {Lane.LIVE}
    assert lanes["rushed"][0] is Lane.LIVE and lanes["rushed"][-1] is Lane.INTERACTIVE  # once 10 s ahead


@pytest.mark.parametrize("container", ["ogg", "webm"])
async def test_opus_in_a_container_is_decoded_while_it_arrives(container: str) -> None:
    pcm = speech()
    at_48k = np.interp(np.arange(len(pcm) * 3) / 3, np.arange(len(pcm)), pcm).astype(np.float32)[:, None]
    data = encode(at_48k, container, "libopus", 48000)
    service, clock = ScriptedService(), Clock()
    audio_format = LiveFormat(container=container)
    config = LiveConfig(partial_interval_ms=10**6)
    async with LiveSession(service, TEMPLATE, config, TURN, clock=clock, audio_format=audio_format) as session:  # type: ignore[arg-type]
        for start in range(0, len(data), 2000):
            await session.feed(data[start : start + 2000])
            await asyncio.sleep(0.001)  # the decoding thread gets a turn, as the network's pace would give
        finals_before_the_end = len(service.calls)
        await session.finish()
    events = drain(session)
    assert sum(isinstance(e, Final) for e in events) == 3 and isinstance(events[-1], Done)
    assert finals_before_the_end >= 1
    assert abs(session.seconds_received - len(pcm) / 16000) < 0.1


async def test_a_broken_container_fails_the_feed() -> None:
    ogg = LiveFormat(container="ogg")
    async with LiveSession(ScriptedService(), TEMPLATE, LiveConfig(), TURN, audio_format=ogg) as session:  # type: ignore[arg-type]
        with pytest.raises(UnsupportedMedia):
            for _ in range(50):
                await session.feed(b"OggS" + bytes(4000))
                await asyncio.sleep(0.01)
            await session.finish()


def test_a_segment_repeating_the_one_before_is_dropped() -> None:
    def seg(text: str) -> Segment:
        return Segment(start=0.0, end=1.0, text=text, confidence=0.9)

    looping = Transcript(
        segments=(seg("We're all going direct to Heaven."), seg("we're all going direct to heaven"), seg("Fail.")),
        language="en",
        language_probability=0.9,
        duration=3.0,
    )
    assert [s.text for s in without_repeats(looping).segments] == ["We're all going direct to Heaven.", "Fail."]


class LoopsWhenPrompted(ScriptedService):
    """Whisper as a prompt can make it: with the words before the lead, a looped text."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TranscriptionRequest] = []

    async def transcribe(self, request: TranscriptionRequest, lane: Lane = Lane.INTERACTIVE, **_: Any) -> Transcript:
        self.requests.append(request)
        transcript = await super().transcribe(request, lane)
        if not request.prompt:
            return transcript
        looped = replace(transcript.segments[0], compression_ratio=3.1)
        return replace(transcript, segments=(looped,))


async def test_a_prompted_final_is_one_bounded_try_then_decoded_without_the_prompt() -> None:
    service, clock = LoopsWhenPrompted(), Clock()
    async with LiveSession(service, TEMPLATE, LiveConfig(partial_interval_ms=10**6), TURN, clock=clock) as session:  # type: ignore[arg-type]
        await stream(session, speech(), clock)
        await session.finish()
    finals = [e.transcript.text for e in drain(session) if isinstance(e, Final)]
    prompted = [r for r in service.requests if r.prompt]
    # The third utterance's final reads the first one's words: one try at temperature 0 with a
    # token cap, stopping at the audio's end; it loops, so it is decoded again, unprompted.
    assert len(prompted) == 1 and prompted[0].bounded and prompted[0].stop_near_end
    assert prompted[0].prompt == finals[0]
    again = service.requests[service.requests.index(prompted[0]) + 1]
    assert not again.prompt and not again.bounded and again.beam_size == 5
    assert session.finals_unprompted == 1 and finals[2] == f"text {len(service.requests)}"


@pytest.mark.parametrize(
    ("segments", "fails"),
    [
        ((), True),  # no text
        ((Segment(start=10.0, end=13.4, text="a", confidence=0.9),), True),  # stops 1.6 s before the audio's end
        ((Segment(start=10.0, end=14.6, text="a", confidence=0.9, compression_ratio=2.5),), True),  # looped
        ((Segment(start=10.0, end=14.6, text="a", confidence=0.9, avg_logprob=-1.2),), True),  # unsure
        ((Segment(start=10.0, end=14.6, text="a", confidence=0.9, compression_ratio=1.3, avg_logprob=-0.2),), False),
    ],
)
def test_a_prompted_try_fails_as_whisper_would_retry_it_or_when_it_stops_early(
    segments: tuple[Segment, ...], fails: bool
) -> None:
    transcript = Transcript(segments=segments, language="en", language_probability=1.0, duration=5.0)
    assert _fails(transcript, 15.0) is fails
