"""What a live session is configured with and what it says: no wire format (app/core/live.py runs it)."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import SttError
from app.core.types import Transcript


@dataclass(frozen=True)
class TurnDetection:
    """Server VAD, with OpenAI's parameters."""

    threshold: float = 0.5
    """Speech probability a frame needs to count as speech."""
    prefix_padding_ms: int = 300
    """Audio kept before the detected start of speech."""
    silence_duration_ms: int = 500
    """Silence that ends an utterance."""


@dataclass(frozen=True)
class LiveConfig:
    partial_interval_ms: int = 1000
    """Least time between two interim decodes of one utterance."""
    partial_encoder_padding_seconds: float | None = None
    """Padding the encoder sees after a partial's audio (None: the engine's, 30 s)."""
    final_head_start_ms: int = 0
    """With server VAD, a final's decode starts this long before the silence would end its
    utterance, on the audio heard so far; speech coming back cancels it. 0: after the commit."""
    min_speech_ms: int = 200
    """Speech shorter than this (a click, a cough) starts no utterance."""
    max_utterance_seconds: float = 28.0
    """An utterance is cut here (at its quietest recent frame): Whisper sees 30 s at most."""
    short_utterance_seconds: float = 30.0
    """A final of less audio than this (by default every one) is decoded with up to `lead_seconds`
    of the audio before it (its words dropped), as whole-file decoding would hear it: Whisper
    mishears a lone "ask not", and an utterance's soft first word ("that some of its" came back
    "the sum of its"). Measured on bench/realtime.py's 6 clips: 1.07% WER against 2.67-5.35%
    with the lead for utterances under 3 s only."""
    lead_seconds: float = 3.0
    lead_prompt_words: int = 12
    """A final with lead audio reads, as its prompt, the last this many words of the finals before
    it that end before its lead (never words its lead holds: heard and read, Whisper copied them),
    in one bounded try; if Whisper loops on it the final is decoded again without (live_decode.py).
    bench/realtime.py: live WER 0.53-0.80% in all six rows against 1.60-2.27% with none; 40 words
    made Whisper loop. 0: no prompt."""
    parallel_finals: int = 1
    """Finals of one session decoding at once. One for a live stream: each final then has the
    previous utterance's text as context, and live streams do not take each other's workers (two
    at once: 5.35% WER and 4.69 s finals at 2 streams against 2.67% and 3.45 s). Two for an upload
    sent faster than real time (app/core/live_upload.py); never every worker, since each final is
    one request of its lane's round-robin."""
    min_commit_ms: int = 100
    """A manual commit of less audio is refused (as OpenAI does)."""
    manual_partials: bool = False
    """With manual turns, decode partials of the audio since the last commit too (the Open API's
    recognize_audio extension); with server VAD there are always partials."""
    max_backlog_seconds: float = 60.0
    """Audio received but not yet decoded to a final; past it appends wait."""
    backlog_wait_seconds: float = 10.0
    """How long an append waits for the backlog to shrink before the stream fails Overloaded."""
    overload_wait_seconds: float = 30.0
    """How long a final may wait for a place in the live lane before it fails."""
    live_burst_seconds: float = 10.0
    """Audio further ahead of real time than this (a file sent at network speed) is decoded on the
    interactive lane: the live lane is for audio spoken now."""


@dataclass(frozen=True)
class SpeechStarted:
    item: int
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    item: int
    audio_end_ms: int


@dataclass(frozen=True)
class Committed:
    item: int
    audio_start_ms: int
    audio_end_ms: int


@dataclass(frozen=True)
class Partial:
    item: int
    text: str
    """The whole interim text of the open utterance so far (adapters send the change)."""


@dataclass(frozen=True)
class Final:
    item: int
    transcript: Transcript
    """Segment and word times are in stream time (seconds since the session's first sample)."""
    audio_seconds: float


@dataclass(frozen=True)
class Failed:
    item: int
    error: SttError


@dataclass(frozen=True)
class Cleared:
    pass


@dataclass(frozen=True)
class Done:
    pass


Event = SpeechStarted | SpeechStopped | Committed | Partial | Final | Failed | Cleared | Done
