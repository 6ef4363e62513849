"""A WAV file's header, read from its first bytes (Google's header check, a live WAV stream)."""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class WavHeader:
    tag: int
    """1 PCM, 3 float, 6 A-law, 7 mu-law, 0xFFFE extensible."""
    channels: int
    sample_rate: int
    bits: int
    data_at: int | None
    """Where the samples begin; None if the data chunk is not within the bytes given."""


def is_wav(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def read_wav_header(head: bytes) -> WavHeader | None:
    """The fmt chunk of a RIFF/WAVE header and where its data begins; None if `head` is not a WAV
    or its fmt chunk has not all arrived."""
    if not is_wav(head):
        return None
    found: WavHeader | None = None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
        if chunk == b"fmt " and at + 24 <= len(head):
            tag, channels, rate = struct.unpack("<HHI", head[at + 8 : at + 16])
            bits = struct.unpack("<H", head[at + 22 : at + 24])[0]
            found = WavHeader(tag, channels, rate, bits, None)
        if chunk == b"data":
            return WavHeader(found.tag, found.channels, found.sample_rate, found.bits, at + 8) if found else None
        at += 8 + size + (size & 1)
    return found
