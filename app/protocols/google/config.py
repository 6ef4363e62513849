"""RecognitionConfig (camelCase or snake_case, enums as names or numbers, Mod9 extensions) -> core.

Whatever Whisper cannot honour is refused with a 400 naming the field, never silently ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from app.core import languages
from app.core.errors import InvalidArgument
from app.core.types import RawEncoding, RawFormat
from app.core.wav import is_wav, read_wav_header
from app.protocols.google.shapes import ConfigShapes
from app.protocols.shared import parse_wire

ENCODINGS = {
    0: "ENCODING_UNSPECIFIED", 1: "LINEAR16", 2: "FLAC", 3: "MULAW", 4: "AMR", 5: "AMR_WB",
    6: "OGG_OPUS", 7: "SPEEX_WITH_HEADER_BYTE", 8: "MP3", 9: "WEBM_OPUS", 10: "ALAW",
}  # fmt: skip
RAW = {
    "LINEAR16": RawEncoding.LINEAR16, "MULAW": RawEncoding.MULAW, "ALAW": RawEncoding.ALAW,
    "LINEAR24": RawEncoding.LINEAR24, "LINEAR32": RawEncoding.LINEAR32, "FLOAT32": RawEncoding.FLOAT32,
}  # fmt: skip
CONTAINERS = {"FLAC", "OGG_OPUS", "WEBM_OPUS", "MP3"}
KNOWN = set(ENCODINGS.values()) | set(RAW)
HONOURED = {
    "encoding", "sampleRateHertz", "audioChannelCount", "enableSeparateRecognitionPerChannel", "languageCode",
    "alternativeLanguageCodes", "maxAlternatives", "profanityFilter", "adaptation", "speechContexts",
    "enableWordTimeOffsets", "enableWordConfidence", "enableAutomaticPunctuation", "model", "useEnhanced",
    "metadata", "diarizationConfig", "enableSpokenPunctuation", "enableSpokenEmojis", "transcriptNormalization",
    "asrModel", "speed", "intervalsJson", "maxPhraseAlternatives", "maxWordAlternatives", "optionsJson", "latency",
}  # fmt: skip


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camelize(value: Any) -> Any:
    """proto3 JSON parsers accept the proto field names too: normalise keys to lowerCamelCase."""
    if isinstance(value, dict):
        return {camel(k): camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


@dataclass(frozen=True)
class GoogleConfig:
    encoding: str
    sample_rate: int | None
    channels: int | None
    separate_channels: bool
    language_tags: tuple[str, ...]
    """The primary languageCode first, then alternativeLanguageCodes (BCP-47 as given)."""
    max_alternatives: int
    word_times: bool
    word_confidence: bool
    punctuation: bool
    profanity_filter: bool
    phrases: tuple[str, ...]
    model: str
    beam_size: int | None
    intervals: tuple[tuple[float, float], ...]

    def to_meta(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_meta(cls, data: dict[str, Any]) -> GoogleConfig:
        fields = dict(data)
        fields["language_tags"] = tuple(fields["language_tags"])
        fields["phrases"] = tuple(fields["phrases"])
        fields["intervals"] = tuple(tuple(p) for p in fields["intervals"])
        return cls(**fields)


def _bad(field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid recognition 'config.{field}': {why}", param=f"config.{field}")


def _int(config: dict[str, Any], field: str, low: int, high: int) -> int | None:
    value = config.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise _bad(field, "must be an integer")
    number = int(value)
    if not low <= number <= high:
        raise _bad(field, f"must be between {low} and {high}, got {number}")
    return number


def _bool(config: dict[str, Any], field: str) -> bool:
    value = config.get(field, False)
    if not isinstance(value, bool):
        raise _bad(field, "must be true or false")
    return value


def _encoding(value: Any) -> str:
    if value is None:
        return "ENCODING_UNSPECIFIED"
    name = ENCODINGS.get(value) if isinstance(value, int) and not isinstance(value, bool) else str(value).upper()
    if name not in KNOWN:
        raise _bad("encoding", f"unknown encoding {value!r}")
    if name in ("AMR", "AMR_WB", "SPEEX_WITH_HEADER_BYTE"):
        raise _bad(
            "encoding",
            f"{name} is not supported by this server; send LINEAR16, FLAC, MULAW, ALAW, OGG_OPUS, WEBM_OPUS or MP3",
        )
    return name


def _refuse_unhonourable(config: dict[str, Any], streaming: bool) -> None:
    if (config.get("diarizationConfig") or {}).get("enableSpeakerDiarization"):
        raise _bad("diarizationConfig", "speaker diarization is not supported by the Whisper engine")
    for field in ("enableSpokenPunctuation", "enableSpokenEmojis"):
        if config.get(field):
            raise _bad(field, "not supported by the Whisper engine")
    if (config.get("transcriptNormalization") or {}).get("entries"):
        raise _bad("transcriptNormalization", "not supported by this server")
    adaptation = config.get("adaptation") or {}
    for field in ("phraseSetReferences", "customClasses", "abnfGrammar"):
        if adaptation.get(field):
            raise _bad(f"adaptation.{field}", "only inline phraseSets are supported")
    for field in ("maxPhraseAlternatives", "maxWordAlternatives", "optionsJson"):
        if config.get(field):
            raise _bad(field, "this Mod9 engine option is not supported by the Whisper engine")
    if config.get("latency") and not streaming:
        raise _bad("latency", "only meaningful for streaming recognition")
    if streaming:
        for field in ("enableSeparateRecognitionPerChannel", "intervalsJson"):
            if config.get(field):
                raise _bad(field, "not supported for streaming recognition (send each channel as its own stream)")


def _check_shapes(config: dict[str, Any]) -> None:
    parse_wire(ConfigShapes, config, root="config", message="Invalid value at '{}': {}".format)


def parse_config(
    raw: Any, *, max_alternatives: int, model_map: dict[str, str], streaming: bool = False
) -> GoogleConfig:
    if not isinstance(raw, dict):
        raise InvalidArgument("Invalid JSON payload received. 'config' must be an object.", param="config")
    config = camelize(raw)
    for key in config:
        if key not in HONOURED:
            raise InvalidArgument(
                f"Invalid JSON payload received. Unknown name \"{key}\" at 'config': Cannot find field.",
                param=f"config.{key}",
            )
    _check_shapes(config)
    _refuse_unhonourable(config, streaming)
    tags = [str(config["languageCode"])] if config.get("languageCode") else []
    extra = config.get("alternativeLanguageCodes") or []
    if not isinstance(extra, list) or len(extra) > 3:
        raise _bad("alternativeLanguageCodes", "a list of at most 3 BCP-47 codes")
    tags += [str(t) for t in extra]
    for tag in tags:
        try:
            languages.normalize(tag)
        except InvalidArgument:
            raise _bad("languageCode", f"unsupported language {tag!r}") from None
    alternatives = _int(config, "maxAlternatives", 0, max_alternatives) or 1
    speed = _int(config, "speed", 1, 9)
    phrases = [str(p) for ctx in config.get("speechContexts") or [] for p in ctx.get("phrases") or []]
    phrases += [
        str(p.get("value", ""))
        for s in (config.get("adaptation") or {}).get("phraseSets") or []
        for p in s.get("phrases") or []
    ]
    model = str(
        config.get("asrModel") or model_map.get(str(config.get("model") or "default"), config.get("model") or "default")
    )
    return GoogleConfig(
        encoding=_encoding(config.get("encoding")),
        sample_rate=_int(config, "sampleRateHertz", 8000, 48000),
        channels=_int(config, "audioChannelCount", 0, 8) or None,
        separate_channels=_bool(config, "enableSeparateRecognitionPerChannel"),
        language_tags=tuple(tags),
        max_alternatives=alternatives,
        word_times=_bool(config, "enableWordTimeOffsets"),
        word_confidence=_bool(config, "enableWordConfidence"),
        punctuation=_bool(config, "enableAutomaticPunctuation"),
        profanity_filter=_bool(config, "profanityFilter"),
        phrases=tuple(p for p in phrases if p),
        model=model,
        beam_size=None if speed is None else 10 - speed,
        intervals=_intervals(config.get("intervalsJson")),
    )


def _intervals(value: Any) -> tuple[tuple[float, float], ...]:
    if not value:
        return ()
    try:
        pairs = json.loads(value) if isinstance(value, str) else value
        result = tuple((float(a), float(b)) for a, b in pairs)
    except (ValueError, TypeError):
        raise _bad("intervalsJson", "a JSON array of [start, end] pairs in seconds") from None
    if any(not (math.isfinite(b) and 0 <= a < b) for a, b in result):
        raise _bad("intervalsJson", "each interval needs finite 0 <= start < end")
    return result


@dataclass(frozen=True)
class Header:
    encoding: str
    sample_rate: int
    channels: int


def sniff(head: bytes) -> Header | None:
    """What a WAV or FLAC header says (Google: the header wins, a contradicting config is an error)."""
    if is_wav(head):
        wav = read_wav_header(head)
        if wav is None:
            return None
        names = {(1, 16): "LINEAR16", (1, 24): "LINEAR24", (1, 32): "LINEAR32", (3, 32): "FLOAT32", (6, 8): "ALAW"}
        names[(7, 8)] = "MULAW"
        encoding = names.get((wav.tag, wav.bits), f"WAV format {wav.tag}/{wav.bits}-bit")
        return Header(encoding, wav.sample_rate, wav.channels)
    if head[:4] == b"fLaC" and len(head) >= 26:
        packed = int.from_bytes(head[18:21], "big")
        return Header("FLAC", packed >> 4, ((packed & 0xF) >> 1) + 1)
    return None


def audio_format(config: GoogleConfig, head: bytes) -> RawFormat | None:
    """The RawFormat to decode with (None: a container PyAV reads), after Google's consistency rules."""
    header = sniff(head)
    if header is not None:
        if config.encoding != "ENCODING_UNSPECIFIED" and config.encoding != header.encoding:
            raise _bad("encoding", f"{config.encoding} does not match the audio header ({header.encoding})")
        if config.sample_rate and config.sample_rate != header.sample_rate:
            raise _bad(
                "sampleRateHertz", f"{config.sample_rate} does not match the audio header ({header.sample_rate})"
            )
        if config.channels and config.channels != header.channels:
            raise _bad("audioChannelCount", f"{config.channels} does not match the audio header ({header.channels})")
        return None
    if config.encoding in RAW:
        if not config.sample_rate:
            raise _bad("sampleRateHertz", f"required for headerless {config.encoding} audio")
        return RawFormat(RAW[config.encoding], config.sample_rate, config.channels or 1)
    if config.encoding in CONTAINERS:
        return None
    raise _bad("encoding", "required for audio without a WAV or FLAC header")


def primary_language(config: GoogleConfig) -> tuple[str | None, tuple[str, ...]]:
    """(language to force, or None to detect among candidates)."""
    codes = [languages.normalize(t, param="config.languageCode") for t in config.language_tags]
    known = tuple(dict.fromkeys(c for c in codes if c))
    if len(known) > 1:
        return None, known
    return (known[0] if known else None), ()


def result_language(config: GoogleConfig, detected: str) -> str:
    """Google answers the tag the caller used (lower-cased) for the language it recognised."""
    for tag in config.language_tags:
        if languages.normalize(tag) == detected:
            return tag.lower()
    return detected


VALID_OPERATION_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
