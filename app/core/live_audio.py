"""Live audio formats -> 16 kHz mono float32, piece by piece (a sample split across two messages
is kept for the next one). `wav`: the bytes are a WAV file's (NIM's file input sends the file as
it is): its header is read for the rate and channels, then its 16-bit samples stream on.
`container` (Ogg or WebM Opus) is decoded by app/core/stream_decode.py's thread instead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.errors import InvalidArgument
from app.core.stream_decode import ALAW, MULAW, StreamResampler
from app.core.types import RawEncoding
from app.core.wav import is_wav, read_wav_header

LIVE_ENCODINGS = (RawEncoding.LINEAR16, RawEncoding.MULAW, RawEncoding.ALAW)
LIVE_RATES = range(8000, 48001)
LIVE_CONTAINERS = ("ogg", "webm")


@dataclass(frozen=True)
class LiveFormat:
    encoding: RawEncoding = RawEncoding.LINEAR16
    sample_rate: int = 16000
    wav: bool = False
    container: str | None = None
    """"ogg" or "webm" (Opus inside): the bytes are the container's, the other fields unused."""

    def __post_init__(self) -> None:
        if self.container is not None:
            if self.container not in LIVE_CONTAINERS:
                raise InvalidArgument(f"live containers are Ogg and WebM, not {self.container}", param="format")
            return
        if self.encoding not in LIVE_ENCODINGS:
            raise InvalidArgument(f"live audio must be PCM16, mu-law or A-law, not {self.encoding}", param="format")
        if self.sample_rate not in LIVE_RATES:
            raise InvalidArgument(f"live audio rate {self.sample_rate} Hz: use 8000 to 48000 Hz", param="sample_rate")


MAX_WAV_HEADER = 64 * 1024


class LiveConverter:
    def __init__(self, audio_format: LiveFormat) -> None:
        self.format = audio_format
        self._resample = StreamResampler(audio_format.sample_rate)
        self._carry = b""
        self._channels = 1
        self._header = audio_format.wav

    def __call__(self, data: bytes) -> np.ndarray:
        """The whole samples of `data` (with any byte left over last time), at 16 kHz."""
        if self.format.encoding is RawEncoding.LINEAR16:
            data = self._carry + data
            if self._header:
                data = self._read_header(data)
                if self._header:  # not all of it yet: kept for the next piece
                    self._carry = data
                    return np.zeros(0, np.float32)
            frame = 2 * self._channels
            whole = len(data) - len(data) % frame
            self._carry = data[whole:]
            pcm = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
            if self._channels > 1:
                pcm = pcm.reshape(-1, self._channels).mean(axis=1)
        else:
            table = MULAW if self.format.encoding is RawEncoding.MULAW else ALAW
            pcm = table[np.frombuffer(data, dtype=np.uint8)]
        return self._resample(pcm)

    def _read_header(self, data: bytes) -> bytes:
        """Skip a WAV header once it has all arrived (no RIFF at the start: raw PCM after all)."""
        if len(data) < 12 and b"RIFF".startswith(data[:4]):
            return data
        if not is_wav(data):
            self._header = False
            return data
        wav = read_wav_header(data)
        if wav is not None:
            if wav.tag not in (1, 0xFFFE) or wav.bits != 16 or not 1 <= wav.channels <= 8:
                raise InvalidArgument("a live WAV stream must hold 16-bit PCM", param="format")
            LiveFormat(RawEncoding.LINEAR16, wav.sample_rate)
            self._channels, self._resample = wav.channels, StreamResampler(wav.sample_rate)
            if wav.data_at is not None:
                self._header = False
                return data[wav.data_at :]
        if len(data) > MAX_WAV_HEADER:
            raise InvalidArgument("no data chunk in the first 64 KiB of the WAV stream", param="format")
        return data
