"""Riva's RecognitionConfig -> the core request, the live format and the turn detection.

Whatever Whisper cannot honour is refused with INVALID_ARGUMENT naming the field. Accepted as
documented choices: `verbatim_transcripts` either way (Whisper has no separate inverse text
normalization stage: its text is its written form; punctuation follows
`enable_automatic_punctuation`), and `speech_contexts` boosts (the phrases become decoding hints,
the boost value is not used)."""

from __future__ import annotations

from dataclasses import dataclass

from riva.client.proto import riva_asr_pb2, riva_audio_pb2

from app.core import languages
from app.core.errors import InvalidArgument
from app.core.live_audio import LiveFormat
from app.core.live_events import TurnDetection
from app.core.types import RawEncoding, RawFormat, TranscriptionRequest
from app.core.wav import is_wav

Encoding = riva_audio_pb2.AudioEncoding
RAW = {Encoding.LINEAR_PCM: RawEncoding.LINEAR16, Encoding.MULAW: RawEncoding.MULAW, Encoding.ALAW: RawEncoding.ALAW}
DETECT = {"", "multi"}
CUSTOM = {"beam_size", "prompt"}


@dataclass(frozen=True)
class RivaConfig:
    request: TranscriptionRequest
    encoding: int
    sample_rate: int
    channels: int
    language_tag: str
    turn: TurnDetection


def _bad(field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid config.{field}: {why}", param=f"config.{field}")


def parse_config(config: riva_asr_pb2.RecognitionConfig, *, max_alternatives: int) -> RivaConfig:
    if config.encoding not in (Encoding.ENCODING_UNSPECIFIED, Encoding.FLAC, Encoding.OGGOPUS, *RAW):
        raise _bad("encoding", f"unknown encoding {config.encoding}")
    if config.sample_rate_hertz and not 8000 <= config.sample_rate_hertz <= 48000:
        raise _bad("sample_rate_hertz", f"must be between 8000 and 48000, got {config.sample_rate_hertz}")
    if not 0 <= config.audio_channel_count <= 8:
        raise _bad("audio_channel_count", "must be between 1 and 8")
    if not 0 <= config.max_alternatives <= max_alternatives:
        raise _bad("max_alternatives", f"must be between 0 and {max_alternatives}")
    if config.diarization_config.enable_speaker_diarization:
        raise _bad("diarization_config", "speaker diarization is not supported by the Whisper engine")
    tag = config.language_code.strip()
    language = None if tag.lower() in DETECT else languages.normalize(tag, param="config.language_code")
    custom = dict(config.custom_configuration)
    for key in custom:
        if key not in CUSTOM:
            raise _bad(f"custom_configuration.{key}", f"unknown key; this server takes {', '.join(sorted(CUSTOM))}")
    beam = custom.get("beam_size")
    if beam is not None and not (beam.isdigit() and 1 <= int(beam) <= 10):
        raise _bad("custom_configuration.beam_size", "an integer from 1 to 10")
    request = TranscriptionRequest(
        model=config.model or "default",
        language=language,
        word_timestamps=config.enable_word_time_offsets,
        word_confidence=config.enable_word_time_offsets,
        alternatives=config.max_alternatives or 1,
        prompt=custom.get("prompt") or None,
        phrases=tuple(p for context in config.speech_contexts for p in context.phrases if p),
        punctuation=config.enable_automatic_punctuation,
        profanity_filter=config.profanity_filter,
        separate_channels=config.enable_separate_recognition_per_channel,
        beam_size=None if beam is None else int(beam),
    )
    return RivaConfig(
        request=request,
        encoding=config.encoding,
        sample_rate=config.sample_rate_hertz,
        channels=config.audio_channel_count or 1,
        language_tag=tag if language else "",
        turn=_turn(config.endpointing_config) if config.HasField("endpointing_config") else TurnDetection(),
    )


def _turn(endpointing: riva_asr_pb2.EndpointingConfig) -> TurnDetection:
    """stop_history: the silence (ms) that ends an utterance; start/stop_threshold: the speech
    probability a frame needs (one threshold here, so both must agree when both are given)."""
    for field in ("start_history", "stop_history_eou", "stop_threshold_eou"):
        if getattr(endpointing, field) > 0:
            raise _bad(f"endpointing_config.{field}", "not supported; set stop_history and start_threshold")
    thresholds = {t for t in (endpointing.start_threshold, endpointing.stop_threshold) if t > 0}
    if len(thresholds) > 1:
        raise _bad("endpointing_config.stop_threshold", "must equal start_threshold (one speech threshold)")
    threshold = thresholds.pop() if thresholds else TurnDetection.threshold
    if not 0 < threshold < 1:
        raise _bad("endpointing_config.start_threshold", "a probability between 0 and 1")
    silence = endpointing.stop_history or TurnDetection.silence_duration_ms
    if not 100 <= silence <= 10_000:
        raise _bad("endpointing_config.stop_history", "between 100 and 10000 ms")
    return TurnDetection(threshold=threshold, silence_duration_ms=silence)


def offline_format(config: RivaConfig, head: bytes) -> RawFormat | None:
    """How to decode a Recognize request's audio: a WAV/FLAC/Ogg file as PyAV reads it, or raw
    samples at the config's rate (riva-client sends a WAV file's bytes whole)."""
    if is_wav(head) or head[:4] in (b"fLaC", b"OggS") or config.encoding in (Encoding.FLAC, Encoding.OGGOPUS):
        return None
    if config.encoding in (Encoding.ENCODING_UNSPECIFIED, *RAW):
        if not config.sample_rate:
            raise _bad("sample_rate_hertz", "required for raw audio without a WAV header")
        return RawFormat(RAW.get(config.encoding, RawEncoding.LINEAR16), config.sample_rate, config.channels)
    raise _bad("encoding", "does not match the audio")


def live_format(config: RivaConfig) -> LiveFormat:
    if config.encoding == Encoding.OGGOPUS:
        return LiveFormat(container="ogg")
    if config.encoding == Encoding.FLAC:
        raise _bad("encoding", "FLAC is not supported for streaming; send LINEAR_PCM, MULAW, ALAW or OGGOPUS")
    if config.channels > 1:
        raise _bad("audio_channel_count", "streaming audio must be mono")
    if config.request.separate_channels:
        raise _bad("enable_separate_recognition_per_channel", "not supported for streaming")
    if not config.sample_rate:
        return LiveFormat(wav=True)
    return LiveFormat(RAW.get(config.encoding, RawEncoding.LINEAR16), config.sample_rate)
