"""Every example of README.md runs as written, from the repo root, against the real server (only the
port is the test server's). A part that needs a cloud account (marked so in the README) is skipped."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, RealServer

pytestmark = pytest.mark.e2e
CLOUD = "(needs a cloud account)"
# Every curl must succeed (HTTP status below 400); output is kept to check what came back.
PRELUDE = 'curl() { command curl --fail-with-body -sS "$@"; echo; }\n'


def blocks(language: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    found = re.findall(rf"```{language}\n(.*?)```", readme, re.S)
    return [b for b in found if not re.search(r"^make ", b, re.M)]  # the set-up commands themselves


def runnable(block: str, server: RealServer) -> str:
    lines = block.splitlines()
    cut = next((i for i, line in enumerate(lines) if CLOUD in line), len(lines))
    text = "\n".join(lines[:cut]).replace("localhost:9000", f"127.0.0.1:{server.port}")
    return text.replace("localhost:50051", server.grpc_target)


def test_the_shell_examples_run_verbatim(real_server: RealServer, tmp_path: Path) -> None:
    shell = blocks("bash")
    assert len(shell) == 4
    outputs = []
    for block in shell:
        script = PRELUDE + runnable(block, real_server)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{block}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    text = "\n".join(outputs).lower()
    assert text.count("ask not what your country can do for you") >= 11  # OpenAI, Google, Prosa, Yandex, Open API
    assert '"status":"success"' in text and " --> " in text  # the Open API's transcript and srt
    for file in ("recognize.json", "job.json", "open-api.json"):
        (ROOT / file).unlink(missing_ok=True)


def test_the_sdk_example_runs_verbatim(real_server: RealServer) -> None:
    sdk, live, _ = blocks("python")
    done = subprocess.run(
        [sys.executable, "-c", runnable(sdk, real_server)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.lower().count("ask not what your country can do for you") == 2
    done = subprocess.run(
        [sys.executable, "-c", runnable(live, real_server)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ask not" in done.stdout.lower() and "your country" in done.stdout.lower()


def test_the_grpc_example_runs_verbatim(real_server: RealServer) -> None:
    """Google's client (recognize, long-running, streaming) and Riva's, over gRPC, as written."""
    grpc_clients = blocks("python")[2]
    done = subprocess.run(
        [sys.executable, "-c", runnable(grpc_clients, real_server)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.lower().count("ask not what your country can do for you") >= 3


def test_the_node_example_runs_verbatim(real_server: RealServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Node's @google-cloud/speech on its default gRPC transport (it failed with 14 UNAVAILABLE before)."""
    (snippet,) = blocks("javascript")
    modules = tmp_path_factory.mktemp("node")
    shutil.copy(ROOT / "tests" / "clients" / "package.json", modules / "package.json")
    install = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=modules,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    script = runnable(snippet, real_server).replace("port: 50051", f"port: {real_server.grpc_port}")
    done = subprocess.run(
        ["node", "-e", script],
        cwd=ROOT,
        env=os.environ | {"NODE_PATH": str(modules / "node_modules")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ask not what your country can do for you" in done.stdout.lower()
