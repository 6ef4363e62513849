"""Soak: 32 clients for 10 minutes across the four HTTP protocols against `python -m app` (real
model, shipped defaults), then stops by itself. Prints the request count, errors (target 0; a 429 or
503 with Retry-After is load shedding, counted apart), p50/p95/p99 latency per protocol, and the RSS
of the server and of each worker after the warm-up and at the end (target: growth < 20 MB).

    .venv/bin/python -m bench.soak [--clients 32] [--minutes 10] [--warmup 2] [--out FILE] [--probe]

--probe runs the server under bench/memory_probe.py (with PYTHONMALLOC=malloc) and adds what it saw
inside the server: glibc's heap in use and free-but-kept, and what malloc_trim gives back at the end.
--protocols picks some of the four (e.g. `--protocols yandex`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import statistics
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.common import machine_info, report, running_server
from tests.audio_tools import DATA

JFK = (DATA / "jfk.wav").read_bytes()
with wave.open(str(DATA / "jfk.wav")) as _w:
    JFK_PCM = _w.readframes(_w.getnframes())
SHED = (429, 503)


def openai(client: httpx.Client, url: str) -> httpx.Response:
    return client.post(url + "/v1/audio/transcriptions", files={"file": ("a.wav", JFK)}, data={"model": "whisper-1"})


def google(client: httpx.Client, url: str) -> httpx.Response:
    body = {"config": {"languageCode": "en-US"}, "audio": {"content": base64.b64encode(JFK).decode()}}
    return client.post(url + "/v1/speech:recognize", json=body)


def prosa(client: httpx.Client, url: str) -> httpx.Response:
    body = {"config": {"model": "stt-general", "wait": True}, "request": {"data": base64.b64encode(JFK).decode()}}
    return client.post(url + "/v2/speech/stt", json=body)


def yandex(client: httpx.Client, url: str) -> httpx.Response:
    def chunks() -> object:
        for i in range(0, len(JFK_PCM), 32000):
            yield JFK_PCM[i : i + 32000]

    query = "uuid=" + "5" * 32 + "&key=k&topic=queries&lang=en-US"
    headers = {"content-type": "audio/x-pcm;bit=16;rate=16000", "transfer-encoding": "chunked"}
    return client.post(f"{url}/asr_xml?{query}", content=chunks(), headers=headers)  # type: ignore[arg-type]


PROTOCOLS: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "openai": openai,
    "google": google,
    "prosa": prosa,
    "yandex": yandex,
}


def rss_mb(pid: int) -> float | None:
    """None once the process is gone (a worker recycled after ASR_WORKER_MAX_JOBS, or crashed)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def processes(url: str) -> dict[str, int]:
    """The server (listening on the port) and its decoder children, by role."""
    port = url.rsplit(":", 1)[1]
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if (
                re.search(rb"-m\x00(app|bench\.memory_probe)\x00", status.read_bytes())
                and Path(status.parent / "environ").read_bytes().find(f"ASR_PORT={port}".encode()) >= 0
            ):
                server = int(status.parent.name)
                break
        except OSError:
            continue
    else:
        raise RuntimeError("server process not found")
    tasks = Path(f"/proc/{server}/task").iterdir()
    children = [int(p) for t in tasks for p in (t / "children").read_text().split()]
    workers = [p for p in children if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
    return {"server": server} | {f"worker {i}": pid for i, pid in enumerate(sorted(workers))}


def _slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares RSS trend in MB per minute: a leak climbs, buffers that come and go do not."""
    if len(samples) < 2:
        return 0.0
    times = [t for t, _ in samples]
    values = [v for _, v in samples]
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times) or 1.0
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


def _quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else 0.0


def _median_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """Median RSS of the samples from `start` to `end` seconds (negative: counted from the last)."""
    first, last = samples[0][0], samples[-1][0]
    low, high = (first + start, first + end) if start >= 0 and end > 0 else (last + start, last + end)
    return statistics.median(v for t, v in samples if low <= t <= high)


def _probe_summary(path: Path, warmup_minutes: float) -> list[str]:
    """What bench/memory_probe.py saw inside the server, from the first sample after the warm-up."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    ticks = [r for r in records if r["event"] == "tick"]
    after_warmup = [r for r in ticks if r["t"] >= records[0]["t"] + warmup_minutes * 60] or ticks
    first, last = after_warmup[0], after_warmup[-1]
    fields = ["rss_mb", "heap_in_use_mb", "heap_free_kept_mb", "mmapped_mb"]
    fields += sorted(k for k in last if k.startswith("rss_") and k != "rss_mb")
    lines = ["Inside the server (memory probe), first sample after the warm-up -> last:"]
    lines += [f"- {f}: {first.get(f, 0):.1f} -> {last[f]:.1f} ({last[f] - first.get(f, 0):+.1f})" for f in fields]
    trim = {r["event"]: r for r in records if r["event"] in ("before_trim", "after_trim")}
    if len(trim) == 2:
        before, after = trim["before_trim"]["rss_mb"], trim["after_trim"]["rss_mb"]
        lines.append(f"- malloc_trim at the end: RSS {before:.1f} -> {after:.1f} MB ({after - before:+.1f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2, help="minutes before the RSS baseline")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--probe", action="store_true", help="watch the server's memory from inside")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="which of them, comma-separated")
    args = parser.parse_args()
    probe_file = Path(tempfile.mkdtemp(prefix="asr-probe-")) / "probe.jsonl"
    # PYTHONMALLOC=malloc: every Python object in glibc's heap too, one allocator to read.
    probe_env = {"ASR_PROBE_OUT": str(probe_file), "PYTHONMALLOC": "malloc"} if args.probe else None
    module = "bench.memory_probe" if args.probe else "app"
    chosen = args.protocols.split(",")
    latencies: dict[str, list[float]] = {name: [] for name in chosen}
    counts = {"ok": 0, "shed": 0, "errors": 0, "prosa_running": 0}
    shed_latency: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    with running_server(workers=2, threads=1, queue_size=16, env=probe_env, module=module) as url:
        end = time.monotonic() + args.minutes * 60

        def client_loop(index: int) -> None:
            name = chosen[index % len(chosen)]
            with httpx.Client(timeout=httpx.Timeout(600, connect=30)) as client:
                while time.monotonic() < end:
                    started = time.perf_counter()
                    try:
                        response = PROTOCOLS[name](client, url)
                        status, retry = response.status_code, response.headers.get("retry-after")
                    except httpx.HTTPError as exc:
                        status, retry = 0, None
                        with lock:
                            errors.append(f"{name}: {type(exc).__name__}")
                    elapsed = time.perf_counter() - started
                    with lock:
                        if status == 200 and name == "prosa" and response.json().get("status") != "complete":
                            counts["prosa_running"] += 1  # the wait budget passed first: a valid answer
                        elif status == 200:
                            counts["ok"] += 1
                            latencies[name].append(elapsed)
                        elif status in SHED and retry:
                            counts["shed"] += 1
                            shed_latency.append(elapsed)
                        else:
                            counts["errors"] += 1
                            if status:
                                errors.append(f"{name}: HTTP {status} {response.text[:200]}")
                    if status in SHED and retry:
                        time.sleep(float(retry))

        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(args.warmup * 60)
        roles = processes(url)
        samples: dict[str, list[tuple[float, float]]] = {role: [] for role in roles}
        replaced: dict[str, int] = dict.fromkeys(roles, 0)
        while any(thread.is_alive() for thread in threads):
            for role, pid in list(roles.items()):
                rss = rss_mb(pid)
                if rss is None:
                    # A recycled worker's successor takes its place; its series goes on, with the
                    # drop that recycling is for (the worker's memory is bounded by it).
                    current = processes(url)
                    fresh = [p for p in current.values() if p not in roles.values()]
                    if fresh:
                        roles[role] = fresh[0]
                        replaced[role] += 1
                    continue
                samples[role].append((time.monotonic(), rss))
            time.sleep(15)
        for thread in threads:
            thread.join()
        # Medians of the first and the last 2 minutes: a worker's RSS swings by a window's buffers
        # from one sample to the next, so single samples would measure where a decode was.
        baseline = {role: _median_between(values, 0, 120) for role, values in samples.items()}
        final = {role: _median_between(values, -120, 0) for role, values in samples.items()}
        slopes = {role: _slope(values) for role, values in samples.items()}
        if args.probe:
            os.kill(roles["server"], signal.SIGUSR1)
            for _ in range(60):
                if "after_trim" in probe_file.read_text():
                    break
                time.sleep(1)
    rows = []
    for name, values in latencies.items():
        q = statistics.quantiles(values, n=100) if len(values) >= 2 else [0.0] * 99
        rows.append([name, str(len(values)), f"{q[49]:.2f}", f"{q[94]:.2f}", f"{q[98]:.2f}"])
    memory = [
        f"- {role}: {baseline[role]:.0f} MB (median, first 2 min after warm-up) -> {final[role]:.0f} MB (last 2 min) "
        f"({final[role] - baseline[role]:+.1f} MB; target < 20); trend {slopes[role]:+.2f} MB/min"
        + (f"; replaced {replaced[role]} time(s) (recycled after ASR_WORKER_MAX_JOBS)" if replaced[role] else "")
        for role in roles
    ]
    context = [
        machine_info(),
        f"{args.clients} clients, {args.minutes:g} min, warm-up {args.warmup:g} min; jfk.wav (11 s) on each protocol.",
        f"Answered 200 with a transcript: {counts['ok']}; Prosa jobs still running at the 60 s wait: "
        f"{counts['prosa_running']}; shed with 429/503 + Retry-After: {counts['shed']} "
        f"(answered in p50 {_quantile(shed_latency, 50):.3f} s, p99 {_quantile(shed_latency, 99):.3f} s); "
        f"errors: {counts['errors']} (target 0)",
        *(f"- error: {e}" for e in errors[:10]),
        "RSS:",
        *memory,
        *(_probe_summary(probe_file, args.warmup) if args.probe else []),
    ]
    report("Soak", context, ["protocol", "answered", "p50 s", "p95 s", "p99 s"], rows, args.out)


if __name__ == "__main__":
    main()
