"""Peers: this server against faster-whisper-server, vox-box and WhisperLive from PyPI, on the same
whisper-base CTranslate2 folder, the same English clips and this machine, in interleaved rounds.

Each peer is installed once into its own virtualenv under ~/.cache/asr-bench-peers/<name> (pip from
PyPI only; WhisperLive also needs Debian's portaudio19-dev, installed when running as root; override
the folder with ASR_BENCH_PEERS_DIR) and started alone on 127.0.0.1 with HF_HUB_OFFLINE=1 and the
local model folder, so nothing comes from a model hub. Round r runs this server, then each peer, one
at a time: throughput at 1, 4 and 8 clients posting the English clips, one ~200 s file, WER of every
transcript. The report also lists each peer's decoding settings (checked against its installed
source) and how much CPU other processes took meanwhile.

    .venv/bin/python -m bench.peers [--rounds 3] [--only NAME,...] [--quick] [--out FILE] [--json FILE]
    .venv/bin/python -m bench.peers --install-only   # just build the peers' virtualenvs

On 2 cores a round of the ten clips takes about 17 minutes (2 rounds: 34 minutes on 2026-12-02),
--quick (one round of four short clips) a few minutes, plus the first install (some 15 GB of
virtualenvs, mostly torch and CUDA wheels pulled by vox-box and WhisperLive).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx

from bench.common import (
    MODEL,
    SAMPLE_RATE,
    TRANSCRIPTIONS,
    cpu_cores,
    emit,
    free_port,
    machine_info,
    markdown_table,
    report,
    running_server,
)
from tests.audio_tools import ENGLISH, long_clip, read_pcm, references, wav_bytes
from tests.wer import wer

THIS = "asr-server"
CLIENT_LEVELS = (1, 4, 8)
QUICK_CLIPS = ("jfk.wav", "moonshine_beckett.wav", "ps_librivox_0870.wav", "ps_librivox_0920.wav")
PEERS_HOME = Path(os.environ.get("ASR_BENCH_PEERS_DIR") or Path.home() / ".cache" / "asr-bench-peers")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
INSTALL_TIMEOUT = 3600.0  # seconds per pip or apt step
START_TIMEOUT = 900.0  # seconds until a server answers its health route
REQUEST_TIMEOUT = 900.0  # seconds for one transcription request
STAMP = ".asr-bench-installed"


# --------------------------------------------------------------------------------------------
# Peers: how each is installed, started, and what it decodes with (read from its installed source)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """A peer's command line, its extra environment, its base URL and health route."""

    argv: list[str]
    url: str
    health: str = "/health"
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Peer:
    name: str
    pip_steps: tuple[tuple[str, ...], ...]
    """pip install argument lists, run in order in the fresh virtualenv."""
    distributions: tuple[str, ...]
    """Distributions whose versions the report shows."""
    form: dict[str, str]
    """Form fields of every transcription request (besides the file)."""
    settings: str
    """What the peer decodes with, as read from its source; checked by `source_checks`."""
    model_format: str
    launch: Callable[[Path, Path, Path, int], Launch]
    """(venv, model folder, scratch folder, cores) -> Launch."""
    source_checks: tuple[tuple[str, str], ...] = ()
    """(file under site-packages, text it must contain) backing `settings`."""
    constraints: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    quirks: str = ""
    folder: str = ""
    """Virtualenv folder name under PEERS_HOME when not `name` (variants share one install)."""

    @property
    def venv(self) -> Path:
        return PEERS_HOME / (self.folder or self.name)

    @property
    def spec(self) -> str:
        """What the install stamp records: a change reinstalls the virtualenv."""
        return json.dumps([self.pip_steps, self.constraints, self.apt])


def _fws_launch(venv: Path, model: Path, tmp: Path, threads: int, workers: int) -> Launch:
    # --config is its only way to pass WhisperModel options (device, compute type, threads);
    # the YAML model name must match the request's `model_name` field.
    config = tmp / "fws.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "models": [
                    {
                        "name": "whisper-1",
                        "path": str(model),
                        "model_options": {
                            "device": "cpu",
                            "compute_type": "int8",
                            "cpu_threads": threads,
                            "local_files_only": True,
                        },
                    }
                ]
            }
        )
    )
    port = free_port()
    argv = [str(venv / "bin" / "faster-whisper-server"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "info"]
    return Launch(argv, f"http://127.0.0.1:{port}")


def _vox_launch(venv: Path, model: Path, tmp: Path, cores: int) -> Launch:
    port = free_port()
    argv = [str(venv / "bin" / "vox-box"), "start", "--model", str(model), "--device", "cpu"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp / "vox-box")]
    return Launch(argv, f"http://127.0.0.1:{port}")


# WhisperLive ships no server script: start TranscriptionServer.run() through its Python API. Its
# REST thread binds 0.0.0.0 whatever `host` says, so uvicorn.run is wrapped to bind loopback only.
_WHISPERLIVE_MAIN = """
import sys
import uvicorn
from whisper_live import server

_run = uvicorn.run


def _loopback_run(app, **kwargs):
    kwargs["host"] = "127.0.0.1"
    _run(app, **kwargs)


server.uvicorn.run = _loopback_run
model, ws_port, rest_port, cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
server.TranscriptionServer().run(
    "127.0.0.1",
    port=ws_port,
    backend="faster_whisper",
    faster_whisper_custom_model_path=model,
    enable_rest=True,
    rest_port=rest_port,
    cache_path=cache,
)
"""


def _whisperlive_launch(venv: Path, model: Path, tmp: Path, cores: int) -> Launch:
    script = tmp / "whisperlive_main.py"
    script.write_text(_WHISPERLIVE_MAIN)
    ws_port, rest_port = free_port(), free_port()
    argv = [str(venv / "bin" / "python"), str(script), str(model), str(ws_port), str(rest_port), str(tmp / "wl")]
    return Launch(argv, f"http://127.0.0.1:{rest_port}")


FWS_CHECKS = (
    ("faster_whisper_server/api.py", 'model_name: str = Form("whisper-1")'),
    ("faster_whisper_server/api.py", "segments, info = transcriber.transcribe(audio_input, **options)"),
    ("faster_whisper_server/models.py", "model = WhisperModel(model_path, **model_options)"),
    ("faster_whisper_server/config.py", 'data.get("batch_size"), default=1'),
)


def _fws(name: str, workers: int) -> Peer:
    """faster-whisper-server with `workers` uvicorn workers sharing the cores."""
    threads = max(1, cpu_cores() // workers)
    return Peer(
        name=name,
        pip_steps=(("faster-whisper-server==0.0.3",),),
        distributions=("faster-whisper-server", "faster-whisper", "ctranslate2"),
        form={"model_name": "whisper-1", "response_format": "json"},
        settings=(
            f"WhisperModel(device=cpu, compute_type=int8, cpu_threads={threads}) set through --config "
            f"model_options, {workers} uvicorn worker(s) (--workers), model loaded on the first request; "
            "transcribe options are faster-whisper's defaults: beam 5, temperature fallback 0.0-1.0, "
            "condition on previous text, no VAD; batch_size 1 (no batched pipeline: long audio is decoded "
            "window after window); decoding runs inside the async handler, one request at a time per worker"
        ),
        model_format="the same CTranslate2 folder (path in the YAML config)",
        launch=lambda venv, model, tmp, cores: _fws_launch(venv, model, tmp, threads, workers),
        source_checks=FWS_CHECKS,
        quirks="reads the form field `model_name`, not `model`",
        folder="faster-whisper-server",
    )


PEERS: dict[str, Peer] = {
    "faster-whisper-server": _fws("faster-whisper-server", 1),
    "vox-box": Peer(
        name="vox-box",
        pip_steps=(
            ("setuptools<81", "wheel"),
            ("--no-build-isolation", "openai-whisper==20240930"),
            ("vox-box==0.0.21",),
        ),
        # huggingface-hub 1.x needs h11>=0.16 (through httpx2); vox-box pins h11==0.14.0.
        constraints=("huggingface-hub<1",),
        distributions=("vox-box", "faster-whisper", "ctranslate2"),
        form={"model": "whisper-1", "response_format": "json"},
        settings=(
            "its faster_whisper backend (picked because the folder has model.bin and tokenizer.json): "
            "WhisperModel(device=cpu, compute_type=default, cpu_threads=8) hard-coded, so the float16 "
            "weights run as float32 with 8 threads on this machine's cores; temperature 0 only "
            "(form default), beam 5, no VAD, without_timestamps for json; decoding in a thread pool "
            "on one model"
        ),
        model_format=(
            "the same CTranslate2 folder via --model (no openai-whisper weights needed: openai-whisper "
            "is only a dependency)"
        ),
        launch=_vox_launch,
        source_checks=(
            ("vox_box/backends/stt/faster_whisper.py", "cpu_threads = 8"),
            ("vox_box/backends/stt/faster_whisper.py", 'compute_type = "default"'),
            ("vox_box/server/routers.py", 'temperature = float(form.get("temperature", 0))'),
            ("vox_box/estimator/faster_whisper.py", '"tokenizer.json",'),
        ),
        quirks=(
            "openai-whisper==20240930 builds only with setuptools<81 and --no-build-isolation; "
            "needs the constraint huggingface-hub<1; errors come back as HTTP 200 with an "
            "HTTPException body"
        ),
    ),
    "whisperlive": Peer(
        name="whisperlive",
        pip_steps=(("whisper-live==0.10.0",),),
        # Its tokenizers==0.20.3 pin leaves transformers 4.45-4.46: saying so spares pip's resolver
        # from downloading some fifty newer transformers wheels first (same result, minutes sooner).
        constraints=("transformers<4.47",),
        apt=("portaudio19-dev",),
        distributions=("whisper-live", "faster-whisper", "ctranslate2", "torch"),
        form={"model": "whisper-1", "response_format": "json"},
        settings=(
            "its OpenAI-compatible REST route (enable_rest=True; the rest is a WebSocket streaming "
            "server): WhisperModel(model, device=cpu, compute_type=int8) with cpu_threads left at 0 "
            "(CTranslate2's default of 4 threads), loaded on the first request; temperature 0 only "
            "(form default), beam 5, vad_filter=False; decoding runs inside the async handler, so one "
            "request at a time"
        ),
        model_format=(
            "the same CTranslate2 folder via faster_whisper_custom_model_path (model=whisper-1 maps to "
            "it; model=base would try a hub download)"
        ),
        launch=_whisperlive_launch,
        source_checks=(
            ("whisper_live/server.py", 'compute_type = "float16" if device == "cuda" else "int8"'),
            ("whisper_live/server.py", "transcriber = WhisperModel(model_name, device=device, compute_type"),
            ("whisper_live/server.py", "temperature: float = Form(default=0.0)"),
            ("whisper_live/server.py", "vad_filter=False,"),
            ("whisper_live/server.py", 'kwargs={"host": "0.0.0.0", "port": rest_port'),
        ),
        quirks=(
            "needs Debian's portaudio19-dev for PyAudio; no server script, started through "
            "TranscriptionServer().run() (its REST thread hard-codes host 0.0.0.0: the bench wraps "
            "uvicorn.run to bind 127.0.0.1); pulls torch with CUDA wheels from PyPI"
        ),
    ),
}
EXTRA_PEERS: dict[str, Peer] = {
    # Not run by default: faster-whisper-server with one uvicorn worker per core (1 thread each).
    "faster-whisper-server-mw": _fws("faster-whisper-server-mw", cpu_cores()),
}


# --------------------------------------------------------------------------------------------
# Installing
# --------------------------------------------------------------------------------------------


def _run_logged(cmd: Sequence[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> None:
    with log.open("ab") as out:
        out.write(("\n$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        try:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({code}); log {log}:\n{tail}")


def _ensure_apt(packages: Sequence[str], log: Path) -> None:
    missing = [
        p
        for p in packages
        if "install ok installed"
        not in subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"needs Debian packages {' '.join(missing)}: sudo apt-get install {' '.join(missing)}")
    print(f"  apt-get install {' '.join(missing)}", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    _run_logged(["apt-get", "update", "-q"], log, INSTALL_TIMEOUT, env)
    _run_logged(["apt-get", "install", "-y", "-q", *missing], log, INSTALL_TIMEOUT, env)


def install(peer: Peer) -> None:
    """Create the peer's virtualenv once; reuse it while its stamp matches the install steps."""
    venv = peer.venv
    stamp = venv / STAMP
    if stamp.is_file() and stamp.read_text() == peer.spec:
        return
    print(f"installing {peer.name} into {venv} (once; this takes a while)...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)  # a half-done or outdated install
    venv.mkdir(parents=True)
    log = venv / "install.log"
    if peer.apt:
        _ensure_apt(peer.apt, log)
    _run_logged([sys.executable, "-m", "venv", str(venv)], log, INSTALL_TIMEOUT)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input"]
    if peer.constraints:
        constraints = venv / "constraints.txt"
        constraints.write_text("\n".join(peer.constraints) + "\n")
        pip += ["-c", str(constraints)]
    env = _clean_env(venv) | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for step in peer.pip_steps:
        print(f"  pip install {' '.join(step)}", flush=True)
        _run_logged([*pip, *step], log, INSTALL_TIMEOUT, env)
    stamp.write_text(peer.spec)


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages under {venv}")
    return found[0]


def check_source(peer: Peer) -> list[str]:
    """Lines of the installed source that no longer say what `peer.settings` claims."""
    site = _site_packages(peer.venv)
    problems = []
    for rel, text in peer.source_checks:
        path = site / rel
        if not path.is_file() or text not in path.read_text(errors="replace"):
            problems.append(f"{rel} lacks {text!r}")
    return problems


def versions(peer: Peer) -> str:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for d in sys.argv[1:]:\n"
        "    try:\n"
        "        out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    python = str(peer.venv / "bin" / "python")
    result = subprocess.run([python, "-c", code, *peer.distributions], capture_output=True, text=True, timeout=120)
    found: dict[str, str] = json.loads(result.stdout or "{}")
    return ", ".join(f"{k} {v}" for k, v in found.items())


def this_versions() -> str:
    names = ("asr-server", "faster-whisper", "ctranslate2")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


# --------------------------------------------------------------------------------------------
# Running a server alone
# --------------------------------------------------------------------------------------------


def _clean_env(venv: Path) -> dict[str, str]:
    """This environment without our virtualenv, with the peer's bin first and hubs offline."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env | OFFLINE


def _healthy(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    # vox-box answers 200 with an HTTPException body while it is not ready.
    return isinstance(body, dict) and body.get("status") == "ok"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    # Children (uvicorn workers) may outlive the leader by a moment.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_peer(peer: Peer, model: Path, cores: int) -> Iterator[str]:
    """Start the peer alone in its own process group; yield its base URL once healthy."""
    with tempfile.TemporaryDirectory(prefix=f"asr-bench-{peer.name}-") as tmp_name:
        tmp = Path(tmp_name)
        launch = peer.launch(peer.venv, model, tmp, cores)
        log_path = tmp / "server.log"
        env = _clean_env(peer.venv) | launch.env
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                launch.argv, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{peer.name} exited with code {process.returncode} before it was up")
                with contextlib.suppress(httpx.TransportError):
                    if _healthy(httpx.get(launch.url + launch.health, timeout=5)):
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{peer.name} not up after {START_TIMEOUT:.0f} s")
                time.sleep(0.5)
            yield launch.url
        except BaseException:
            print(f"  {peer.name} log tail:\n{log_path.read_text(errors='replace')[-2000:]}", flush=True)
            raise
        finally:
            _stop(process)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    name: str
    wav: bytes
    seconds: float
    reference: str


def load_clips(names: Sequence[str]) -> list[Clip]:
    refs = references()
    clips = []
    for name in names:
        pcm = read_pcm(name)
        clips.append(Clip(name, wav_bytes(pcm), len(pcm) / SAMPLE_RATE, refs[name]))
    return clips


def transcribe(client: httpx.Client, url: str, wav: bytes, form: dict[str, str]) -> str:
    response = client.post(url + TRANSCRIPTIONS, files={"file": ("clip.wav", wav, "audio/wav")}, data=form)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise RuntimeError(f"no text in the answer: {response.text[:300]}")
    return str(body["text"])


def _client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=30))


def run_level(
    url: str, form: dict[str, str], clips: Sequence[Clip], clients: int
) -> tuple[float, list[tuple[Clip, str]]]:
    """`clients` threads each post every clip once, each in its own rotation, all starting together.
    Every client sends the same audio, so they finish close together; (audio s/s, transcripts)."""
    start = threading.Barrier(clients + 1, timeout=120)
    results: list[tuple[Clip, str]] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        order = [clips[(index + i) % len(clips)] for i in range(len(clips))]
        with _client() as client:
            start.wait()
            for clip in order:
                text = transcribe(client, url, clip.wav, form)
                with lock:
                    results.append((clip, text))

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client_loop, i) for i in range(clients)]
        start.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - started
    return sum(c.seconds for c, _ in results) / wall, results


def warm_up(url: str, form: dict[str, str], clip: Clip, cores: int) -> None:
    """Untimed: lets lazy peers load their model and every worker of this server see a request."""

    def once() -> None:
        with _client() as client:
            transcribe(client, url, clip.wav, form)

    with ThreadPoolExecutor(cores) as pool:
        for future in [pool.submit(once) for _ in range(cores)]:
            future.result()


def _busy_ticks() -> int:
    """Busy clock ticks of all CPUs since boot (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values) - values[3] - values[4]


def _own_ticks() -> int:
    """CPU ticks of this process and every live descendant, reaped children included."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    mine = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in mine} - mine
        mine |= found
        grew = bool(found)
    return sum(ticks.get(pid, 0) for pid in mine)


class ForeignLoad:
    """Share of the machine's CPUs that processes outside this benchmark used while it measured."""

    def __enter__(self) -> ForeignLoad:
        self.busy, self.own, self.started = _busy_ticks(), _own_ticks(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self.started
        ticks = elapsed * os.sysconf("SC_CLK_TCK") * cpu_cores()
        foreign = (_busy_ticks() - self.busy) - (_own_ticks() - self.own)
        self.share = max(0.0, foreign / ticks) if ticks > 0 else 0.0


@dataclass
class Results:
    throughput: dict[int, list[float]] = field(default_factory=dict)
    texts: dict[int, list[tuple[Clip, str]]] = field(default_factory=dict)
    long_times: list[float] = field(default_factory=list)
    long_texts: list[str] = field(default_factory=list)
    foreign: list[float] = field(default_factory=list)
    """Per round: CPU share other processes took while this server was measured."""
    errors: list[str] = field(default_factory=list)


def measure(
    name: str,
    url: str,
    form: dict[str, str],
    clips: Sequence[Clip],
    levels: Sequence[int],
    long_wav: bytes,
    long_seconds: float,
    cores: int,
    results: Results,
) -> None:
    warm_up(url, form, clips[0], cores)
    with ForeignLoad() as load:
        for clients in levels:
            value, texts = run_level(url, form, clips, clients)
            results.throughput.setdefault(clients, []).append(value)
            results.texts.setdefault(clients, []).extend(texts)
            print(f"    {name}: {clients} client(s): {value:.2f} audio s/s", flush=True)
        with _client() as client:
            started = time.perf_counter()
            text = transcribe(client, url, long_wav, form)
            elapsed = time.perf_counter() - started
        results.long_times.append(elapsed)
        results.long_texts.append(text)
        print(f"    {name}: long file ({long_seconds:.0f} s): {elapsed:.2f} s", flush=True)
    results.foreign.append(load.share)
    print(f"    {name}: other processes took {load.share:.0%} of the CPUs meanwhile", flush=True)


@contextlib.contextmanager
def start(name: str, model: Path, cores: int) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, form fields) of this server or a peer, running alone."""
    if name == THIS:
        with running_server(workers=cores, threads=1, queue_size=64, timeout=START_TIMEOUT) as url:
            yield url, {"model": "whisper-1", "response_format": "json"}
    else:
        peer = ALL_PEERS[name]
        with running_peer(peer, model, cores) as url:
            yield url, peer.form


ALL_PEERS = PEERS | EXTRA_PEERS


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _spread(values: Sequence[float], digits: int = 2) -> str:
    text = f"{_median(values):.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}-{max(values):.{digits}f})"
    return text


def _wer_of(pairs: Sequence[tuple[Clip, str]]) -> str:
    if not pairs:
        return "-"
    return f"{wer([c.reference for c, _ in pairs], [t for _, t in pairs]):.3f}"


def _foreign_line(names: Sequence[str], results: dict[str, Results]) -> str:
    shares = [f"{n} {', '.join(f'{v:.0%}' for v in results[n].foreign)}" for n in names if results[n].foreign]
    worst = max((v for n in names for v in results[n].foreign), default=0.0)
    warning = " Above a few % the figures are disturbed: rerun on an idle machine." if worst > 0.05 else ""
    return (
        f"CPU share taken by processes outside this benchmark while measuring, per round: {'; '.join(shares)}.{warning}"
    )


def dump_json(
    path: Path, names: Sequence[str], results: dict[str, Results], settings: dict[str, tuple[str, str, str]]
) -> None:
    """Every raw figure and transcript, for a closer look."""
    data = {
        name: {
            "settings": settings.get(name),
            "throughput": {str(k): v for k, v in r.throughput.items()},
            "long_seconds": r.long_times,
            "foreign_cpu_share": r.foreign,
            "errors": r.errors,
            "transcripts": {str(k): [[c.name, t] for c, t in v] for k, v in r.texts.items()},
            "long_transcripts": r.long_texts,
        }
        for name, r in results.items()
        if name in names
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_report(
    names: Sequence[str],
    results: dict[str, Results],
    levels: Sequence[int],
    clips: Sequence[Clip],
    long_seconds: float,
    long_reference: str,
    rounds: int,
    model: Path,
    settings: dict[str, tuple[str, str, str]],
    out: Path | None,
) -> None:
    peers = [n for n in names if n != THIS]
    rows: list[list[str]] = []
    for clients in levels:
        best = max(
            (_median(results[p].throughput[clients]) for p in peers if results[p].throughput.get(clients)),
            default=0.0,
        )
        for name in names:
            values = results[name].throughput.get(clients)
            if not values:
                rows.append([name, str(clients), "failed", "-", "-"])
                continue
            ratio = f"{_median(values) / best:.2f}" if best else "-"
            rows.append([name, str(clients), _spread(values), ratio, _wer_of(results[name].texts[clients])])
    audio = sum(c.seconds for c in clips)
    context = [
        machine_info(),
        f"Model: {MODEL} CTranslate2 folder {model} (float16 weights on disk) for every server; "
        f"HF_HUB_OFFLINE=1, all traffic to 127.0.0.1.",
        f"Clips: {len(clips)} English clips from tests/data ({audio:.1f} s); at each level every client posts "
        f"each clip once, in its own rotation. {rounds} interleaved round(s) (this server, then each peer, "
        "one at a time, each started alone and warmed up); median (min-max) over rounds.",
        "`vs best peer`: audio s/s over the best peer's at that level (>1: faster than every peer). "
        "WER over every transcript of that level (tests/wer.py normaliser, jiwer).",
        _foreign_line(names, results),
    ]
    report(
        "Peers: throughput (audio s/s)",
        context,
        ["server", "clients", "audio s/s", "vs best peer", "WER"],
        rows,
        out,
    )

    long_rows: list[list[str]] = []
    best_time = min((_median(results[p].long_times) for p in peers if results[p].long_times), default=0.0)
    for name in names:
        times = results[name].long_times
        if not times:
            long_rows.append([name, "failed", "-", "-", "-"])
            continue
        t = _median(times)
        ratio = f"{t / best_time:.2f}" if best_time else "-"
        texts = results[name].long_texts
        long_wer = f"{wer([long_reference] * len(texts), texts):.3f}"
        long_rows.append([name, _spread(times), f"{long_seconds / t:.2f}", ratio, long_wer])
    emit(
        "\n".join(
            [
                f"Long file: tests.audio_tools.long_clip() ({long_seconds:.1f} s, the ten English clips with "
                "0.5 s gaps, twice), one request per round; `vs best peer` is wall time over the best "
                "peer's (<1: faster).",
                "",
                markdown_table(["server", "wall s", "audio s/s", "vs best peer", "WER"], long_rows),
                "",
                "Settings (peers' from their installed source, checked at run time):",
                "",
                markdown_table(
                    ["server", "versions", "decoding settings", "model loaded; quirks"],
                    [[n, *settings[n]] for n in names],
                ),
                "",
            ]
        ),
        out,
    )
    failures = [f"- {n}: {e}" for n in names for e in results[n].errors]
    if failures:
        emit("\n".join(["Errors:", *failures, ""]), out)


THIS_SETTING_NAMES = (
    "compute_type",
    "beam_size",
    "batch_size",
    "window_max_seconds",
    "block_seconds",
    "wide_threads",
)


def this_settings(cores: int) -> str:
    """The decoding-related settings this server ran with (ASR_* defaults but workers and threads)."""
    from app.settings import Settings

    s = Settings(workers=cores, threads_per_worker=1)  # what running_server passes
    parts = [f"{s.workers} worker processes x {s.threads_per_worker} thread"]
    parts += [f"{k}={getattr(s, k)}" for k in THIS_SETTING_NAMES if hasattr(s, k)]
    try:
        from app.core.whisper import FALLBACK_TEMPERATURES

        parts.append(f"temperature fallback {', '.join(map(str, FALLBACK_TEMPERATURES))}")
    except ImportError:
        pass
    return ", ".join(parts) + " (see README and docs/performance.md for what they mean)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--only",
        help=f"comma-separated servers: {', '.join([THIS, *ALL_PEERS])} (default: {THIS} and the three peers)",
    )
    parser.add_argument("--clients", default=",".join(map(str, CLIENT_LEVELS)), help="concurrency levels")
    parser.add_argument("--clips", help="comma-separated clips in tests/data (default: the English clips)")
    parser.add_argument("--quick", action="store_true", help=f"1 round, {len(QUICK_CLIPS)} short clips")
    parser.add_argument("--install-only", action="store_true", help="install the peers and stop")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    parser.add_argument("--json", type=Path, help="write every raw figure and transcript to this file")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else [THIS, *PEERS]
    unknown = [n for n in names if n != THIS and n not in ALL_PEERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; known: {', '.join([THIS, *ALL_PEERS])}")
    chosen = [c.strip() for c in args.clips.split(",") if c.strip()] if args.clips else None
    missing = [c for c in chosen or () if c not in references()]
    if missing:
        parser.error(f"no reference transcript in tests/data/transcripts.tsv for {', '.join(missing)}")
    rounds = 1 if args.quick else args.rounds
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    os.environ.update(OFFLINE)

    cores = cpu_cores()
    from app.core.models import build_registry
    from app.settings import Settings

    model = build_registry([MODEL], {}, MODEL, Settings().cache_dir).specs[MODEL].path
    settings: dict[str, tuple[str, str, str]] = {}
    results = {n: Results() for n in names}
    if THIS in names:
        settings[THIS] = (this_versions(), this_settings(cores), f"{model} (`python -m app`, ASR_MODELS={MODEL})")
    runnable = [n for n in names if n == THIS]
    for name in names:
        if name == THIS:
            continue
        peer = ALL_PEERS[name]
        try:
            install(peer)
            problems = check_source(peer)
            text = peer.settings
            if problems:
                text += " **(source differs: " + "; ".join(problems) + ")**"
            settings[name] = (versions(peer), text, f"{peer.model_format}; {peer.quirks}")
            runnable.append(name)
        except Exception as exc:  # one broken peer must not stop the others
            results[name].errors.append(f"install: {exc}".splitlines()[0])
            settings[name] = ("-", "not installed", str(exc).splitlines()[0])
            print(f"{name}: install failed: {exc}", flush=True)
    if args.install_only:
        return

    clips = load_clips(chosen or (QUICK_CLIPS if args.quick else ENGLISH))
    long_pcm, long_reference = long_clip()
    long_wav, long_seconds = wav_bytes(long_pcm), len(long_pcm) / SAMPLE_RATE
    for r in range(1, rounds + 1):
        for name in runnable:
            print(f"round {r}/{rounds}: {name}", flush=True)
            try:
                with start(name, model, cores) as (url, form):
                    measure(name, url, form, clips, levels, long_wav, long_seconds, cores, results[name])
            except Exception as exc:
                results[name].errors.append(f"round {r}: {exc}".splitlines()[0])
                print(f"  {name} failed in round {r}: {exc}", flush=True)
    write_report(names, results, levels, clips, long_seconds, long_reference, rounds, model, settings, args.out)
    if args.json:
        dump_json(args.json, names, results, settings)


if __name__ == "__main__":
    main()
