"""The decoder: every container and codec we accept, headerless PCM, resampling, channels, the
limits counted while decoding (never read from headers), refusals, blocks and temp-file cleanup."""

from __future__ import annotations

import io
import itertools
import socket
import struct
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from app.core.audio import SAMPLE_RATE, DecodedAudio, DecodeLimits, decode
from app.core.errors import AudioTooLong, InvalidArgument, UnsupportedMedia
from app.core.types import AudioInput, RawEncoding, RawFormat
from tests.audio_tools import DATA, encode, read_pcm, wav_bytes

LIMITS = DecodeLimits(max_seconds=7200, max_decoded_bytes=2 * 1024**3, max_channels=8, max_sample_rate=192000)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def envelope(x: np.ndarray, frame: int = 320) -> np.ndarray:
    """RMS per 20 ms."""
    n = len(x) // frame * frame
    return np.sqrt(np.square(x[:n].reshape(-1, frame), dtype=np.float64).mean(axis=1))


def envelope_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 10) -> float:
    """Best Pearson correlation of the 20 ms energy envelopes within +-200 ms (codec delays)."""
    ea, eb = envelope(a), envelope(b)
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (ea[lag:], eb) if lag >= 0 else (ea, eb[-lag:])
        n = min(len(x), len(y))
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def pick_encoder(*names: str) -> str:
    """The first of `names` this PyAV build can encode with; fail loudly, never skip."""
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    pytest.fail(f"none of the encoders {names} is in this PyAV build")


def encode_chunks(
    chunks: Iterable[np.ndarray],
    container: str,
    codec: str,
    rate: int,
    *,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode float chunks shaped (n, channels) into an in-memory file, one chunk at a time.

    Unlike tests.audio_tools.encode (fine for mono), samples are interleaved as packed "flt"
    expects, so multi-channel files keep their channels; and chunks keep memory small.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = None
        for chunk in chunks:
            channels = chunk.shape[1]
            if stream is None:
                layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
                stream = out.add_stream(codec, rate=rate, layout=layout, options=options or {})
                if bit_rate:
                    stream.bit_rate = bit_rate
            data = np.ascontiguousarray(chunk, dtype=np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format="flt", layout=stream.layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        assert stream is not None
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def upsample(pcm: np.ndarray, factor: int) -> np.ndarray:
    t = np.arange(len(pcm) * factor) / factor
    return np.interp(t, np.arange(len(pcm)), pcm).astype(np.float32)


def pcm_files(tmp_dir: Path) -> list[Path]:
    return sorted(tmp_dir.glob("pcm-*"))


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    return read_pcm("jfk.wav")


# name -> (container, encoder candidates, input rate, channels)
FORMATS: dict[str, tuple[str, tuple[str, ...], int, int]] = {
    "wav-s16": ("wav", ("pcm_s16le",), 16000, 1),
    "wav-s24": ("wav", ("pcm_s24le",), 16000, 1),
    "wav-s32": ("wav", ("pcm_s32le",), 16000, 1),
    "wav-f32": ("wav", ("pcm_f32le",), 16000, 1),
    "wav-mulaw": ("wav", ("pcm_mulaw",), 16000, 1),
    "flac": ("flac", ("flac",), 16000, 1),
    "mp3": ("mp3", ("libmp3lame", "mp3"), 16000, 1),
    # FFmpeg's own Vorbis encoder (used when libvorbis is missing) is experimental and stereo-only.
    "ogg-vorbis": ("ogg", ("libvorbis", "vorbis"), 16000, 2),
    "ogg-opus": ("ogg", ("libopus", "opus"), 48000, 1),
    "webm-opus": ("webm", ("libopus", "opus"), 48000, 1),
    "m4a-aac": ("ipod", ("aac", "libfdk_aac"), 16000, 1),
    "aiff": ("aiff", ("pcm_s16be",), 16000, 1),
}


@pytest.fixture(scope="module")
def encoded(jfk: np.ndarray) -> dict[str, bytes]:
    files = {}
    for name, (container, candidates, rate, channels) in FORMATS.items():
        codec = pick_encoder(*candidates)
        mono = jfk if rate == SAMPLE_RATE else upsample(jfk, rate // SAMPLE_RATE)
        frames = np.repeat(mono[:, None], channels, axis=1)
        options = {"strict": "experimental"} if codec == "vorbis" else None
        files[name] = encode_chunks([frames], container, codec, rate, options=options)
    return files


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_decodes_to_its_duration_and_content(
    name: str, encoded: dict[str, bytes], jfk: np.ndarray, tmp_path: Path
) -> None:
    data = encoded[name]
    with av.open(io.BytesIO(data)) as container:  # really the container we meant
        demuxer = {"webm": "matroska", "ipod": "mov"}.get(FORMATS[name][0], FORMATS[name][0])
        assert container.format.name.split(",")[0] == demuxer
    with decode(AudioInput(data=data), LIMITS, keep_channels=True, tmp_dir=tmp_path) as audio:
        assert audio.channels == FORMATS[name][3]
        assert audio.duration == pytest.approx(11.0, abs=0.1)
        for channel in range(audio.channels):
            samples = audio.samples(channel)
            assert samples.dtype == np.float32
            assert 0.8 < rms(samples) / rms(jfk) < 1.25
            assert envelope_correlation(samples, jfk) > 0.95


def test_mono_mix_of_a_lossy_stereo_file(encoded: dict[str, bytes], tmp_path: Path) -> None:
    data = encoded["ogg-vorbis"]
    with decode(AudioInput(data=data), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.channels == 1
        assert audio.duration == pytest.approx(11.0, abs=0.1)
        assert rms(audio.samples(0)) > 0.05


def test_decode_from_a_path(encoded: dict[str, bytes], jfk: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "upload.flac"
    path.write_bytes(encoded["flac"])
    audio_input = AudioInput(path=str(path))
    with decode(audio_input, LIMITS, keep_channels=False, tmp_dir=tmp_path / "tmp") as audio:
        assert audio.duration == pytest.approx(11.0, abs=0.01)
        np.testing.assert_allclose(audio.samples(0), jfk, atol=1e-3)


RAW_CODECS = {
    RawEncoding.LINEAR16: "pcm_s16le",
    RawEncoding.LINEAR24: "pcm_s24le",
    RawEncoding.LINEAR32: "pcm_s32le",
    RawEncoding.FLOAT32: "pcm_f32le",
    RawEncoding.MULAW: "pcm_mulaw",
    RawEncoding.ALAW: "pcm_alaw",
}


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("encoding", list(RawEncoding))
def test_raw_pcm(encoding: RawEncoding, rate: int, jfk: np.ndarray, tmp_path: Path) -> None:
    pcm = jfk if rate == 16000 else jfk[::2].copy()
    raw = encode(pcm[:, None], encoding.value, RAW_CODECS[encoding], rate)
    assert len(raw) == len(pcm) * {"s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4}.get(
        encoding.value, 1
    )  # headerless: nothing but samples
    audio_input = AudioInput(data=raw, raw=RawFormat(encoding, rate))
    with decode(audio_input, LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.duration == pytest.approx(11.0, abs=0.01)
        assert 0.9 < rms(audio.samples(0)) / rms(jfk) < 1.1


def test_raw_pcm_channels(jfk: np.ndarray, tmp_path: Path) -> None:
    """RawFormat.channels is honoured: stereo LINEAR16 is 11 s of two channels, not 22 s of one."""
    stereo = np.stack([jfk, np.zeros_like(jfk)], axis=1)
    raw = np.round(stereo * 32767).astype("<i2").tobytes()
    audio_input = AudioInput(data=raw, raw=RawFormat(RawEncoding.LINEAR16, 16000, channels=2))
    with decode(audio_input, LIMITS, keep_channels=True, tmp_dir=tmp_path) as audio:
        assert audio.channels == 2
        assert audio.duration == pytest.approx(11.0, abs=0.01)
        np.testing.assert_allclose(audio.samples(0), jfk, atol=1e-3)
        assert rms(audio.samples(1)) < 1e-4


def test_resamples_to_16k(tmp_path: Path) -> None:
    data = (DATA / "ps_chan3.wav").read_bytes()
    assert av.open(io.BytesIO(data)).streams.audio[0].rate == 11025
    with decode(AudioInput(data=data), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.duration == pytest.approx(20.87, abs=0.05)
        assert audio.frames == pytest.approx(20.8715 * SAMPLE_RATE, abs=0.05 * SAMPLE_RATE)
        reference = read_pcm("ps_chan3.wav")
        assert envelope_correlation(audio.samples(0), reference) > 0.99


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    """A different clip, as long as jfk (11 s)."""
    pcm = read_pcm("ps_goforward.wav")
    return np.pad(pcm, (0, max(0, 11 * SAMPLE_RATE - len(pcm))))[: 11 * SAMPLE_RATE]


def test_channels_kept_apart(jfk: np.ndarray, tmp_path: Path) -> None:
    stereo = np.stack([jfk, np.zeros_like(jfk)], axis=1)
    data = encode_chunks([stereo], "wav", "pcm_s16le", 16000)
    with decode(AudioInput(data=data), LIMITS, keep_channels=True, tmp_dir=tmp_path) as audio:
        assert audio.channels == 2
        assert audio.duration == pytest.approx(11.0, abs=0.01)
        left, right = audio.samples(0), audio.samples(1)
        assert rms(left) == pytest.approx(rms(jfk), rel=0.01)
        np.testing.assert_allclose(left, jfk, atol=1e-3)
        assert rms(right) < 1e-4


def test_two_voices_do_not_leak(jfk: np.ndarray, other: np.ndarray, tmp_path: Path) -> None:
    stereo = np.stack([jfk, other], axis=1)
    data = encode_chunks([stereo], "wav", "pcm_s16le", 16000)
    with decode(AudioInput(data=data), LIMITS, keep_channels=True, tmp_dir=tmp_path) as audio:
        np.testing.assert_allclose(audio.samples(0), jfk, atol=1e-3)
        np.testing.assert_allclose(audio.samples(1), other, atol=1e-3)


def test_channels_mixed_to_mono(jfk: np.ndarray, tmp_path: Path) -> None:
    stereo = np.stack([jfk, np.zeros_like(jfk)], axis=1)
    data = encode_chunks([stereo], "wav", "pcm_s16le", 16000)
    with decode(AudioInput(data=data), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.channels == 1
        assert audio.duration == pytest.approx(11.0, abs=0.01)
        mono = audio.samples(0)
        assert rms(mono) > 0.05
        assert envelope_correlation(mono, jfk) > 0.99


# --- limits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opus_bomb() -> bytes:
    """20 minutes of silence as 6 kbit/s Ogg Opus, encoded 10 s at a time."""
    silence = np.zeros((10 * 48000, 1), np.float32)
    options = {"frame_duration": "60", "compression_level": "0"}
    codec = pick_encoder("libopus", "opus")
    return encode_chunks((silence for _ in range(120)), "ogg", codec, 48000, bit_rate=6000, options=options)


def test_duration_bomb_refused(opus_bomb: bytes, tmp_path: Path) -> None:
    assert len(opus_bomb) < 2 * 1024**2
    with av.open(io.BytesIO(opus_bomb)) as container:
        assert container.duration / 1e6 == pytest.approx(1200, abs=1)
    with pytest.raises(AudioTooLong, match="declares"):  # refused from its header, before decoding
        decode(
            AudioInput(data=opus_bomb),
            replace(LIMITS, max_seconds=60),
            keep_channels=False,
            tmp_dir=tmp_path,
        )
    assert pcm_files(tmp_path) == []


def test_a_piped_wav_that_declares_a_huge_size_still_decodes(jfk: np.ndarray, tmp_path: Path) -> None:
    data = bytearray(wav_bytes(jfk[:16000]))
    at = data.index(b"data") + 4
    data[4:8] = data[at : at + 4] = b"\xff\xff\xff\xff"  # what ffmpeg writes to a pipe
    pcm = decode(AudioInput(data=bytes(data)), replace(LIMITS, max_seconds=60), keep_channels=False, tmp_dir=tmp_path)
    assert pcm.frames == 16000
    pcm.close()


def test_decoded_bytes_limit(jfk: np.ndarray, tmp_path: Path) -> None:
    data = wav_bytes(jfk)  # 11 s decode to 704,000 float32 bytes
    with pytest.raises(AudioTooLong, match="bytes"):
        decode(
            AudioInput(data=data),
            replace(LIMITS, max_decoded_bytes=100_000),
            keep_channels=False,
            tmp_dir=tmp_path,
        )


def test_too_many_channels(jfk: np.ndarray, tmp_path: Path) -> None:
    three = np.stack([jfk, jfk, jfk], axis=1)
    data = encode_chunks([three], "wav", "pcm_s16le", 16000)
    with pytest.raises(InvalidArgument, match="channels") as refused:
        decode(
            AudioInput(data=data),
            replace(LIMITS, max_channels=2),
            keep_channels=True,
            tmp_dir=tmp_path,
        )
    assert type(refused.value) is InvalidArgument
    # ... and within the limit the three channels come back apart.
    with decode(AudioInput(data=data), LIMITS, keep_channels=True, tmp_dir=tmp_path) as audio:
        assert audio.channels == 3


def test_sample_rate_above_limit(tmp_path: Path) -> None:
    data = wav_bytes(np.zeros(48000, np.float32), 48000)
    with pytest.raises(InvalidArgument, match="sample rate") as refused:
        decode(
            AudioInput(data=data),
            replace(LIMITS, max_sample_rate=44100),
            keep_channels=False,
            tmp_dir=tmp_path,
        )
    assert type(refused.value) is InvalidArgument


def chunk_offset(wav: bytes, chunk_id: bytes) -> int:
    """Offset of a RIFF chunk's id (walking the chunk list, not searching the payload)."""
    pos = 12
    while pos + 8 <= len(wav):
        size = struct.unpack_from("<I", wav, pos + 4)[0]
        if wav[pos : pos + 4] == chunk_id:
            return pos
        pos += 8 + size + (size & 1)
    raise AssertionError(f"no {chunk_id!r} chunk")


@pytest.mark.parametrize("claimed", [0x7FFF_F000, 0xFFFF_FFFF])
def test_wav_header_size_is_not_trusted(claimed: int, jfk: np.ndarray, tmp_path: Path) -> None:
    wav = bytearray(wav_bytes(jfk[:SAMPLE_RATE]))  # 1 s
    data = chunk_offset(bytes(wav), b"data")
    struct.pack_into("<I", wav, data + 4, claimed)  # claims up to 37 hours of samples
    struct.pack_into("<I", wav, 4, min(claimed + data, 0xFFFF_FFFF))
    audio_input = AudioInput(data=bytes(wav))
    with decode(audio_input, replace(LIMITS, max_seconds=60), keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.duration == pytest.approx(1.0, abs=0.01)


def test_forged_wav_sample_rate_refused(jfk: np.ndarray, tmp_path: Path) -> None:
    wav = bytearray(wav_bytes(jfk[:SAMPLE_RATE]))
    fmt = chunk_offset(bytes(wav), b"fmt ")
    struct.pack_into("<II", wav, fmt + 12, 655_350, 655_350 * 2)  # sample rate, byte rate
    with pytest.raises(InvalidArgument, match="sample rate") as refused:
        decode(AudioInput(data=bytes(wav)), LIMITS, keep_channels=False, tmp_dir=tmp_path)
    assert type(refused.value) is InvalidArgument
    assert pcm_files(tmp_path) == []


def test_flac_sample_rate_above_limit_refused(tmp_path: Path) -> None:
    data = encode(np.zeros((38_400, 1), np.float32), "flac", "flac", 384_000)
    with pytest.raises(InvalidArgument, match="sample rate") as refused:
        decode(AudioInput(data=data), LIMITS, keep_channels=False, tmp_dir=tmp_path)
    assert type(refused.value) is InvalidArgument


def test_forged_flac_streaminfo_rate_is_not_trusted(encoded: dict[str, bytes], tmp_path: Path) -> None:
    """STREAMINFO says 655,350 Hz but every frame header says 16 kHz: decoded at the real rate."""
    flac = bytearray(encoded["flac"])
    assert flac[:4] == b"fLaC" and flac[4] & 0x7F == 0  # first metadata block is STREAMINFO
    offset = 8 + 10  # after the block sizes and frame sizes: 20 bits of sample rate
    fields = int.from_bytes(flac[offset : offset + 8], "big")
    assert fields >> 44 == 16000
    fields = (fields & ~(0xFFFFF << 44)) | (655_350 << 44)
    flac[offset : offset + 8] = fields.to_bytes(8, "big")
    with decode(AudioInput(data=bytes(flac)), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.duration == pytest.approx(11.0, abs=0.01)


# --- not audio ----------------------------------------------------------------------------------

NOT_AUDIO = {
    "random": np.random.default_rng(7).bytes(64 * 1024),
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">IIBBBBB", 256, 1, 8, 2, 0, 0, 0) + bytes(4096),
    "text": b"This is a plain text file, not audio.\n" * 200,
    "empty": b"",
}


@pytest.mark.parametrize("name", list(NOT_AUDIO))
def test_not_audio_is_unsupported(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia):
        decode(AudioInput(data=NOT_AUDIO[name]), LIMITS, keep_channels=False, tmp_dir=tmp_path)
    assert pcm_files(tmp_path) == []


@pytest.mark.parametrize("source", ["data", "path"])
def test_hls_playlist_is_unsupported_and_fetches_nothing(source: str, tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        playlist = (
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
            f"#EXTINF:10.0,\n{url}/segment0.aac\n#EXTINF:10.0,\n{url}/segment1.ts\n#EXT-X-ENDLIST\n"
        )
        path = tmp_path / "playlist.m3u8"
        path.write_text(playlist)
        audio_input = AudioInput(data=playlist.encode()) if source == "data" else AudioInput(path=str(path))
        with pytest.raises(UnsupportedMedia):
            decode(audio_input, LIMITS, keep_channels=False, tmp_dir=tmp_path)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected


@pytest.mark.parametrize("container", ["avi", "nut"])
def test_demuxer_outside_whitelist_is_refused(container: str, jfk: np.ndarray, tmp_path: Path) -> None:
    """FFmpeg could decode these, but only the listed demuxers are ever opened."""
    data = encode(jfk[:SAMPLE_RATE, None], container, "pcm_s16le", 16000)
    with av.open(io.BytesIO(data)) as opened:
        assert sum(frame.samples for frame in opened.decode(audio=0)) == SAMPLE_RATE
    with pytest.raises(UnsupportedMedia):
        decode(AudioInput(data=data), LIMITS, keep_channels=False, tmp_dir=tmp_path)


def test_truncated_wav_keeps_what_is_there(jfk: np.ndarray, tmp_path: Path) -> None:
    wav = wav_bytes(jfk)
    half = wav[: len(wav) // 2]
    with decode(AudioInput(data=half), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.duration == pytest.approx(5.5, abs=0.05)
        np.testing.assert_allclose(audio.samples(0), jfk[: audio.frames], atol=1e-3)


# --- blocks -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sixty_seconds(jfk: np.ndarray) -> np.ndarray:
    """jfk, 1.5 s of silence, jfk, ... cut at 60 s, over a faint noise floor."""
    gap = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    signal = np.concatenate([jfk, gap] * 5)[: 60 * SAMPLE_RATE]
    noise = np.random.default_rng(3).normal(0, 1e-3, len(signal)).astype(np.float32)
    return signal + noise


def test_blocks_cover_everything_once_and_cut_in_quiet(
    sixty_seconds: np.ndarray, jfk: np.ndarray, tmp_path: Path
) -> None:
    data = wav_bytes(sixty_seconds)
    with decode(AudioInput(data=data), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert audio.frames == 60 * SAMPLE_RATE
        blocks = list(audio.blocks(0, 30))
        whole = audio.samples(0)
    assert len(blocks) >= 2
    starts = [round(offset * SAMPLE_RATE) for offset, _ in blocks]
    lengths = [len(block) for _, block in blocks]
    assert starts[0] == 0
    assert all(a < b for a, b in itertools.pairwise(starts))
    assert all(s + n == nxt for s, n, nxt in zip(starts, lengths, starts[1:], strict=False))
    assert sum(lengths) == 60 * SAMPLE_RATE
    np.testing.assert_array_equal(np.concatenate([block for _, block in blocks]), whole)
    assert all(20 * SAMPLE_RATE <= n <= 30 * SAMPLE_RATE for n in lengths[:-1])
    assert lengths[-1] <= 36 * SAMPLE_RATE
    speech = rms(jfk)
    for cut in starts[1:]:
        around = whole[cut - SAMPLE_RATE // 20 : cut + SAMPLE_RATE // 20]
        assert rms(around) < 0.05 * speech, f"cut at {cut / SAMPLE_RATE:.2f} s is not quiet"


# --- temp files ---------------------------------------------------------------------------------


def test_temp_file_removed_on_exit(jfk: np.ndarray, tmp_path: Path) -> None:
    with decode(AudioInput(data=wav_bytes(jfk)), LIMITS, keep_channels=False, tmp_dir=tmp_path) as audio:
        assert isinstance(audio, DecodedAudio)
        assert pcm_files(tmp_path) == [audio.path]
        assert audio.path.stat().st_size == audio.frames * 4
    assert not audio.path.exists()
    assert pcm_files(tmp_path) == []


EMPTY_WAV = (
    b"RIFF"
    + struct.pack("<I", 36)
    + b"WAVEfmt "
    + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    + b"data"
    + struct.pack("<I", 0)
)


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("too-long", AudioTooLong),
        ("too-many-bytes", AudioTooLong),
        ("no-samples", UnsupportedMedia),
    ],
)
def test_no_temp_file_left_after_refusal(case: str, error: type[Exception], jfk: np.ndarray, tmp_path: Path) -> None:
    data, limit = {
        "too-long": (wav_bytes(jfk), replace(LIMITS, max_seconds=2)),
        "too-many-bytes": (wav_bytes(jfk), replace(LIMITS, max_decoded_bytes=200_000)),
        "no-samples": (EMPTY_WAV, LIMITS),
    }[case]
    with pytest.raises(error):
        decode(AudioInput(data=data), limit, keep_channels=False, tmp_dir=tmp_path)
    assert pcm_files(tmp_path) == []
