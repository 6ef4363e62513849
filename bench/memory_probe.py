"""`python -m bench.memory_probe`: `python -m app` with its memory watched from inside, for the soak.

Every `ASR_PROBE_SECONDS` (60) it appends one JSON line to `ASR_PROBE_OUT`: RSS, glibc's heap
(mallinfo2: bytes in use, bytes free but kept, mmapped) and RSS by kind of mapping. Run with
PYTHONMALLOC=malloc (the soak sets it) every Python object is in glibc's heap too, so "in use" is
all live memory: a leak grows it; memory the allocator keeps after a free grows "free but kept".
SIGUSR1 asks glibc to hand its free pages back (malloc_trim) and records RSS before and after.
(tracemalloc was tried first: its own snapshots, a copy of every trace, grew the heap it measured.)
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from app.core.heap import trim_heap


class _MallInfo2(ctypes.Structure):
    _FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS.split()]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2
MB = 1024 * 1024


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _mappings() -> dict[str, float]:
    """Resident MB by kind of mapping: glibc's main heap and its thread arenas (64 MB aligned), files
    (code, the models), and other anonymous memory (thread stacks, large malloc blocks, native
    libraries' own maps; Python's object arenas unless PYTHONMALLOC=malloc, as the soak sets)."""
    kinds: dict[str, float] = {}
    kind = "other_anon"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            low, high = (int(x, 16) for x in fields[0].split("-"))
            size, name = high - low, fields[5] if len(fields) > 5 else ""
            if name == "[heap]":
                kind = "glibc_main_heap"
            elif name.startswith("["):
                kind = "other_anon"
            elif name:
                kind = "files"
            elif low % (64 * MB) == 0 and size <= 64 * MB:
                kind = "glibc_thread_arenas"
            else:
                kind = "other_anon"
        elif fields[0] == "Rss:":
            kinds[kind] = kinds.get(kind, 0.0) + int(fields[1]) / 1024
    kinds["threads"] = float(len(list(Path("/proc/self/task").iterdir())))
    return kinds


def _heap() -> dict[str, float]:
    info = _LIBC.mallinfo2()
    return {
        "heap_in_use_mb": info.uordblks / MB,  # allocated from the main and other arenas
        "heap_free_kept_mb": info.fordblks / MB,  # freed, still held by glibc
        "mmapped_mb": info.hblkhd / MB,  # large blocks mapped on their own
        "arena_mb": info.arena / MB,
    }


def _sample(out: Path, event: str) -> None:
    record: dict[str, Any] = {"t": time.time(), "event": event, "rss_mb": _rss_mb()}
    record |= _heap() | {"rss_" + k: v for k, v in _mappings().items()}
    with out.open("a") as file:
        file.write(json.dumps(record) + "\n")


def _watch(out: Path, every: float, trim: threading.Event) -> None:
    _sample(out, "start")
    next_at = time.monotonic() + every
    while True:
        if trim.wait(max(0.0, next_at - time.monotonic())):
            trim.clear()
            _sample(out, "before_trim")
            assert trim_heap is not None
            trim_heap()
            _sample(out, "after_trim")
            continue
        _sample(out, "tick")
        next_at += every


def main() -> None:
    out = Path(os.environ["ASR_PROBE_OUT"])
    trim = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: trim.set())
    every = float(os.environ.get("ASR_PROBE_SECONDS", "60"))
    threading.Thread(target=_watch, args=(out, every, trim), daemon=True, name="memory-probe").start()
    from app.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
