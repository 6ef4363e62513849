"""Live audio conversion: a WAV stream's header read across pieces, G.711 and resampling, and the
one WAV header reader Google's header check shares."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from app.core.errors import InvalidArgument
from app.core.live_audio import LiveConverter, LiveFormat
from app.core.types import RawEncoding
from app.core.wav import read_wav_header
from app.protocols.google.config import sniff
from tests.audio_tools import read_pcm, wav_bytes


def wav_with_extra_chunk(pcm16: bytes, rate: int, channels: int, bits: int = 16, tag: int = 1) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"  # odd size: padded to even
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + listing + b"data" + struct.pack("<I", len(pcm16))
    return b"RIFF" + struct.pack("<I", len(body) + len(pcm16)) + body + pcm16


def fed(converter: LiveConverter, data: bytes, piece: int) -> np.ndarray:
    out = [converter(data[i : i + piece]) for i in range(0, len(data), piece)]
    return np.concatenate(out)


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_a_wav_stream_is_read_across_pieces_of_any_size(piece: int) -> None:
    pcm = read_pcm("ps_goforward.wav")
    stereo = np.repeat((pcm * 32767).astype("<i2")[:, None], 2, axis=1).tobytes()
    data = wav_with_extra_chunk(stereo, 16000, 2)
    out = fed(LiveConverter(LiveFormat(wav=True)), data, piece)
    assert len(out) == len(pcm) and np.allclose(out, pcm, atol=1 / 32767)


def test_a_wav_stream_at_8k_is_resampled() -> None:
    pcm = read_pcm("ps_goforward.wav")[::2]
    out = fed(LiveConverter(LiveFormat(wav=True)), wav_bytes(pcm, rate=8000), 3200)
    assert abs(len(out) - 2 * len(pcm)) < 64


def test_bytes_without_a_riff_header_are_raw_pcm() -> None:
    raw = (read_pcm("ps_goforward.wav") * 32767).astype("<i2").tobytes()
    out = fed(LiveConverter(LiveFormat(wav=True)), raw, 999)
    assert len(out) == len(raw) // 2


def test_wav_streams_that_are_not_16_bit_pcm_or_have_no_data_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="16-bit PCM"):
        LiveConverter(LiveFormat(wav=True))(wav_with_extra_chunk(bytes(400), 16000, 1, bits=8))
    header_only = wav_with_extra_chunk(b"", 16000, 1)[:-8] + b"junk" + struct.pack("<I", 70_000) + bytes(70_000)
    with pytest.raises(InvalidArgument, match="no data chunk"):
        LiveConverter(LiveFormat(wav=True))(header_only)


def test_g711_and_rates() -> None:
    assert len(LiveConverter(LiveFormat(RawEncoding.MULAW, 8000))(bytes(800))) == pytest.approx(1600, abs=32)
    with pytest.raises(InvalidArgument, match="8000 to 48000"):
        LiveFormat(RawEncoding.LINEAR16, 96000)
    with pytest.raises(InvalidArgument, match="Ogg and WebM"):
        LiveFormat(container="mp4")


def test_one_header_reader_for_google_and_live() -> None:
    data = wav_with_extra_chunk(bytes(320), 8000, 1, bits=8, tag=7)
    header = read_wav_header(data)
    assert header is not None and (header.tag, header.channels, header.sample_rate, header.bits) == (7, 1, 8000, 8)
    assert header.data_at == len(data) - 320
    assert read_wav_header(data[:30]) is None and read_wav_header(b"OggS" + bytes(40)) is None
    google = sniff(data)
    assert google is not None and (google.encoding, google.sample_rate, google.channels) == ("MULAW", 8000, 1)
