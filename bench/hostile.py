"""What hostile inputs cost before they are refused (docs/reliability.md, figures 6 and 16): decode
bombs (CPU time of the refusal in this process) and the multipart cases of the python-multipart and
Starlette CVEs (wall time of the answer from a real server on the fake engine, through a socket).

    .venv/bin/python -m bench.hostile [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import resource
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import av
import httpx
import numpy as np

from app.core.audio import DecodeLimits, decode
from app.core.errors import SttError
from app.core.types import AudioInput
from app.main import create_app
from bench.common import machine_info, report
from tests.audio_tools import read_pcm, wav_bytes
from tests.conftest import fake_registry, fake_settings, serve_in_thread
from tests.fakes import FakeEngineFactory

LIMITS = DecodeLimits(max_seconds=7200, max_decoded_bytes=2 * 1024**3, max_channels=8, max_sample_rate=192000)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def opus_bomb(minutes: int) -> bytes:
    """`minutes` of silence as 6 kbit/s Ogg Opus."""
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000, options={"frame_duration": "60"})
        stream.bit_rate = 6000
        stream.layout = "mono"  # type: ignore[union-attr]
        silence = np.zeros((1, 10 * 48000), np.float32)
        for _ in range(minutes * 6):
            frame = av.AudioFrame.from_ndarray(silence, format="flt", layout="mono")
            frame.sample_rate = 48000
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return out.getvalue()


def forged_rate_wav() -> bytes:
    data = bytearray(wav_bytes(read_pcm("jfk.wav")))
    at = data.index(b"fmt ") + 12
    data[at : at + 4] = struct.pack("<I", 2**31 - 1)
    return bytes(data)


def refusal(data: bytes, limits: DecodeLimits) -> tuple[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        started = cpu()
        try:
            decode(AudioInput(data=data), limits, keep_channels=False, tmp_dir=Path(tmp)).close()
            outcome = "decoded"
        except SttError as exc:
            outcome = f"{exc.kind}: {exc.message[:60]}"
        return outcome, cpu() - started


def multipart_cases() -> list[tuple[str, Callable[[httpx.Client, str], httpx.Response]]]:
    audio = wav_bytes(read_pcm("ps_goforward.wav"))

    def form(body: bytes, boundary: str = "b") -> Callable[[httpx.Client, str], httpx.Response]:
        def send(client: httpx.Client, url: str) -> httpx.Response:
            headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
            return client.post(url + "/v1/audio/transcriptions", content=body, headers=headers)

        return send

    def part(name: str, value: bytes, headers: bytes = b"") -> bytes:
        return (
            b'--b\r\nContent-Disposition: form-data; name="'
            + name.encode()
            + b'"\r\n'
            + headers
            + b"\r\n"
            + value
            + b"\r\n"
        )

    file_part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + audio + b"\r\n"
    model = part("model", b"whisper-1")
    return [
        ("Content-Type with 50 backslashes", form(model + b"--b--\r\n", boundary="b" + "\\" * 50)),
        ("5 MB CRLF preamble", form(b"\r\n" * 2_500_000 + model + file_part + b"--b--\r\n")),
        ("5 MB CRLF epilogue", form(model + file_part + b"--b--\r\n" + b"\r\n" * 2_500_000)),
        ("1,001 parts", form(b"".join(part(f"f{i}", b"x") for i in range(1001)) + b"--b--\r\n")),
        ("2 MiB non-file field", form(part("prompt", b"x" * 2 * 1024**2) + b"--b--\r\n")),
        ("10,000 part headers", form(part("model", b"whisper-1", b"X-A: b\r\n" * 10_000) + b"--b--\r\n")),
        ("a valid 2.8 s request (for scale)", form(model + file_part + b"--b--\r\n")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    bomb = opus_bomb(20)
    for label, data, limits in (
        (f"Ogg Opus, 20 min declared, {len(bomb) // 1024} KiB, cap 60 s", bomb, replace(LIMITS, max_seconds=60)),
        ("WAV declaring 2^31-1 Hz", forged_rate_wav(), LIMITS),
        (
            "WAV, 11 s, decoded-bytes cap 100 kB",
            wav_bytes(read_pcm("jfk.wav")),
            replace(LIMITS, max_decoded_bytes=100_000),
        ),
    ):
        outcome, seconds = refusal(data, limits)
        rows.append(["decode", label, outcome, f"{seconds * 1000:.1f} ms CPU"])
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            fake_settings(Path(tmp), workers=1), engine_factory=FakeEngineFactory(), registry=fake_registry()
        )
        with serve_in_thread(app) as url, httpx.Client(timeout=60) as client:
            for label, send in multipart_cases():
                started = time.perf_counter()
                response = send(client, url)
                elapsed = time.perf_counter() - started
                rows.append(["multipart", label, f"HTTP {response.status_code}", f"{elapsed * 1000:.0f} ms"])
    report("Hostile inputs", [machine_info()], ["kind", "input", "answer", "cost"], rows, args.out)


if __name__ == "__main__":
    main()
