"""Benchmark helpers: the real server in a subprocess, timed HTTP posts, and raw faster-whisper
(plain sequential decoding with the server's beam and temperatures) as the baseline."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import queue
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16_000
MODEL = "whisper-base"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
READY = "/v1/health/ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    workers: int,
    threads: int,
    *,
    queue_size: int = 64,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    module: str = "app",
) -> Iterator[str]:
    """`python -m app` (or a `module` that runs it) on a free port with only whisper-base loaded (plus
    `env`); yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as tmp:
        port = free_port()
        env = (
            os.environ
            | {
                "ASR_HOST": "127.0.0.1",
                "ASR_PORT": str(port),
                "ASR_WORKERS": str(workers),
                "ASR_THREADS_PER_WORKER": str(threads),
                "ASR_QUEUE_SIZE": str(queue_size),
                "ASR_DATA_DIR": str(Path(tmp) / "data"),
                "ASR_MODELS": MODEL,
                "ASR_DEFAULT_MODEL": MODEL,
                "ASR_API_KEYS": "",
                "ASR_GRPC_PORT": "0",  # off unless a bench asks (two benches at once would share 50051)
            }
            | (env or {})
        )
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            cmd = [sys.executable, "-m", module]
            process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, url, log_path, timeout)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + READY, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server not ready:\n{log.read_text(errors='replace')[-3000:]}")


def http_client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(3600, connect=30))


def post_wav(client: httpx.Client, url: str, wav: bytes) -> tuple[float, str]:
    """POST a WAV to the OpenAI route; (wall seconds, transcript text)."""
    started = time.perf_counter()
    response = client.post(
        url + TRANSCRIPTIONS,
        files={"file": ("clip.wav", wav, "audio/wav")},
        data={"model": "whisper-1", "response_format": "json"},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, str(response.json()["text"])


def decode_wav(wav: bytes) -> np.ndarray:
    """16 kHz mono float32 samples of a WAV, decoded the way the server decodes uploads."""
    with av.open(io.BytesIO(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frames = [f for packet in container.decode(audio=0) for f in resampler.resample(packet)]
        frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float32)


class RawEngine:
    """whisper-base loaded once, decoding as every peer server does: faster-whisper's plain
    sequential transcribe over the whole audio, with the server's beam size and temperatures."""

    def __init__(self, threads: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from app.core.models import build_registry
        from app.core.whisper import WhisperConfig
        from app.settings import Settings

        self.settings = Settings()
        registry = build_registry([MODEL], {}, MODEL, self.settings.cache_dir)
        engine = WhisperConfig(models=tuple(registry.specs.values()), threads=threads)()
        self.model = engine.models[MODEL]
        self.options = engine._options(_plain_request(), None, 30.0)  # seconds: only a preview uses them

    def transcribe(self, pcm: np.ndarray) -> str:
        """Decode fully (the segment generator is consumed) and return the text."""
        segments, _ = self.model.transcribe(pcm, **self.options)
        return " ".join(s.text.strip() for s in segments)

    def timed(self, pcm: np.ndarray) -> tuple[float, str]:
        started = time.perf_counter()
        text = self.transcribe(pcm)
        return time.perf_counter() - started, text


def _plain_request() -> Any:
    from app.core.types import AudioInput, TranscriptionRequest

    return TranscriptionRequest(audio=AudioInput(data=b""), model=MODEL)


def _raw_worker(threads: int, pcm: np.ndarray, repeats: int, barrier: Any, results: Any) -> None:
    try:
        engine = RawEngine(threads)
        engine.transcribe(pcm[: 30 * SAMPLE_RATE])  # warm-up: first-call costs stay untimed
    except BaseException:
        barrier.abort()  # the parent fails at once instead of waiting out the barrier
        raise
    barrier.wait()
    for _ in range(repeats):
        engine.transcribe(pcm)
    results.put(repeats * len(pcm) / SAMPLE_RATE)


def raw_throughput(processes: int, threads: int, pcm: np.ndarray, repeats: int) -> float:
    """Audio seconds per wall second of `processes` spawned engines decoding `pcm` `repeats`
    times each; models load and warm up before a shared barrier, so only decoding is timed."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_raw_worker, args=(threads, pcm, repeats, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=600)
        started = time.perf_counter()
        audio = 0.0
        for _ in procs:
            while True:
                try:
                    audio += results.get(timeout=1)
                    break
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in procs):
                        raise RuntimeError("a raw engine process failed") from None
        wall = time.perf_counter() - started
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
    return audio / wall


def best_raw_throughput(pcm: np.ndarray, repeats: int) -> tuple[float, str]:
    """Max over 1 process x N threads and N processes x 1 thread (N = cores); (value, config)."""
    cores = cpu_cores()
    configs = [(1, cores)] + ([(cores, 1)] if cores > 1 else [])
    measured = {f"{p} proc x {t} thr": raw_throughput(p, t, pcm, repeats) for p, t in configs}
    label = max(measured, key=lambda k: measured[k])
    details = ", ".join(f"{k}: {v:.2f}" for k, v in measured.items())
    return measured[label], f"best {label} ({details})"


def cpu_cores() -> int:
    """What `nproc` prints: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_info() -> str:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Machine: nproc {cpu_cores()}, {cpu}; commit {commit or 'unknown'}; {date}"


def emit(text: str, out: Path | None) -> None:
    """Print `text` and append it to `out` when given."""
    print(text, flush=True)
    if out is not None:
        with out.open("a", encoding="utf-8") as f:
            f.write(text + "\n")


def report(
    title: str, context: Sequence[str], header: Sequence[str], rows: Sequence[Sequence[str]], out: Path | None
) -> None:
    """One benchmark's markdown section: title, machine and context lines, the table; printed and saved."""
    emit("\n".join([f"### {title}", "", *context, "", markdown_table(header, rows), ""]), out)
