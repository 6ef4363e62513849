"""Shared fixtures: an in-process app on a fake engine, a real uvicorn in a thread, and the real
server (`python -m app`, real model) in a subprocess for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.core.models import ModelRegistry, ModelSpec
from app.main import create_app
from app.server import server_config
from app.settings import Settings
from tests.fakes import FakeEngineFactory

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs two pytest workers (`-n 2 --dist loadgroup`): the tests that start real
    servers share one worker (and so one session server), the in-process real-model tests the
    other, and the fast tests fill in around them."""
    for item in items:
        module = item.path.name
        if module.startswith("test_e2e_") or module == "test_readme.py":
            item.add_marker(pytest.mark.xdist_group("servers"))
        elif module == "test_engine.py":
            item.add_marker(pytest.mark.xdist_group("engine"))


def fake_registry() -> ModelRegistry:
    specs = {
        "whisper-base": ModelSpec("whisper-base", Path("/nonexistent/base"), multilingual=True),
        "whisper-tiny.en": ModelSpec("whisper-tiny.en", Path("/nonexistent/tiny.en"), multilingual=False),
    }
    return ModelRegistry(specs, "whisper-base")


def fake_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # No reserve worker: one process less per app (the reserve has its own tests in test_scheduler).
    # No gRPC port unless a test asks for one: parallel tests would fight over 50051.
    values: dict[str, Any] = {
        "workers": 1,
        "reserve_workers": 0,
        "queue_size": 4,
        "data_dir": tmp_path,
        "grpc_port": 0,
    } | overrides
    return Settings(**values)


async def wait_ready(app: FastAPI, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (app.state.service and app.state.service.pool.ready):
        if time.monotonic() > deadline:
            raise TimeoutError("app did not become ready")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        await wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield client


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_fake_app(tmp_path: Path) -> AppFactory:
    def make(engine: FakeEngineFactory | None = None, **overrides: Any) -> FastAPI:
        return create_app(
            fake_settings(tmp_path, **overrides), engine_factory=engine or FakeEngineFactory(), registry=fake_registry()
        )

    return make


@pytest.fixture
async def fake_client(make_fake_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_fake_app()) as client:
        yield client


def stop_process(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # only possible in the main thread
        pass


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server (HTTP over loopback) around an in-process app."""
    port = free_port()
    # The server `python -m app` runs: uvicorn with the guarded h11 protocol (app.server).
    server = ThreadedServer(server_config(app, app.state.settings, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/v1/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("threaded server did not become ready")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


class RealServer:
    """`python -m app` with the bundled models, as a user runs it."""

    def __init__(self, tmp: Path, **env: str) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.log = tmp / f"server-{self.port}.log"
        environment = (
            os.environ
            | {
                "ASR_HOST": "127.0.0.1",
                "ASR_PORT": str(self.port),
                "ASR_GRPC_PORT": str(self.grpc_port),
                "ASR_DATA_DIR": str(tmp / "data"),
                "ASR_WORKERS": "2",
                # One process less for the servers of special cases; the shared one runs the defaults.
                "ASR_RESERVE_WORKERS": "0",
            }
            | env
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=ROOT,
            env=environment,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/v1/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready: {self.log.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        # Workers are started from pool threads, so look at every thread's children.
        tasks = Path(f"/proc/{self.process.pid}/task").iterdir()
        children = [pid for task in tasks for pid in (task / "children").read_text().split()]
        return [int(pid) for pid in children if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()]

    def kill(self) -> None:
        """SIGKILL: no drain, no shutdown hooks, as a crash or an OOM kill."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process, 30)


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    server = RealServer(tmp_path_factory.mktemp("real"), ASR_RESERVE_WORKERS="1")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (installed by `make test`)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)
