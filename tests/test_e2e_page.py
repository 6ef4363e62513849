"""The page at `/` in headless Chromium against the real server and model: the microphone (Chromium's
fake capture device playing real speech) over the realtime WebSocket, and a file upload through the
OpenAI endpoint. `ASR_UPDATE_SCREENSHOT=1` also writes the README's screenshot, docs/page.png."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.audio_tools import read_pcm, references, wav_bytes
from tests.browser import Tab, chromium, chromium_path
from tests.conftest import ROOT, AppFactory, RealServer, serve_in_thread
from tests.wer import wer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (make system-deps)"),
]
DATA = ROOT / "tests" / "data"
MIC = ("ps_librivox_0870.wav", "ps_librivox_0880.wav")
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."

# Records every text the transcript shows, partial or final, in order (the test reads it afterwards).
WATCH = """
window.seen = [];
const shown = new Map();
new MutationObserver(() => {
  for (const line of document.querySelectorAll('#transcript p')) {
    const entry = line.className + ':' + line.textContent;
    if (line.textContent && shown.get(line.dataset.item) !== entry) {
      shown.set(line.dataset.item, entry);
      window.seen.push(entry);
    }
  }
}).observe(document.getElementById('transcript'),
          {subtree: true, childList: true, characterData: true, attributes: true});
true
"""


async def _open(tab: Tab, server: RealServer) -> None:
    await tab.open(server.url + "/")
    await tab.wait_for("document.querySelectorAll('#model option').length > 1", timeout=15)


async def test_microphone_partials_then_finals_over_the_realtime_websocket(
    real_server: RealServer, tmp_path: Path
) -> None:
    # Two sentences, each followed by silence that ends its utterance; the fake device loops the file.
    gap = np.zeros(int(1.5 * 16000), np.float32)
    microphone = tmp_path / "microphone.wav"
    microphone.write_bytes(wav_bytes(np.concatenate([read_pcm(MIC[0]), gap, read_pcm(MIC[1]), gap])))
    async with chromium(microphone) as tab:
        await _open(tab, real_server)
        await tab.evaluate(WATCH)
        await tab.evaluate("document.getElementById('language').value = 'en'")
        await tab.evaluate("document.getElementById('record').click()")
        await tab.wait_for("document.getElementById('live-status').textContent === 'hearing speech'", timeout=30)
        await tab.wait_for("document.querySelectorAll('#transcript p.final').length >= 2", timeout=90)
        await tab.evaluate("document.getElementById('record').click()")
        await tab.wait_for("document.getElementById('live-status').textContent === 'idle'", timeout=30)
        seen: list[str] = await tab.evaluate("window.seen")
        if os.environ.get("ASR_UPDATE_SCREENSHOT"):
            await tab.screenshot(tmp_path / "page.png")
            shutil.copy(tmp_path / "page.png", ROOT / "docs" / "page.png")

    finals = [entry.split(":", 1)[1] for entry in seen if entry.startswith("final:")]
    first_final = next(index for index, entry in enumerate(seen) if entry.startswith("final:"))
    assert any(entry.startswith("partial:") for entry in seen[:first_final]), seen
    expected = references()
    assert wer([expected[MIC[0]], expected[MIC[1]]], finals[:2]) <= 0.15, finals


async def test_file_upload_in_every_mode(real_server: RealServer) -> None:
    async with chromium(DATA / "jfk.wav") as tab:
        await _open(tab, real_server)
        await tab.set_file("#audio-file", DATA / "jfk.wav")
        results = {}
        for response_format, stream in (("verbose_json", False), ("srt", False), ("text", True)):
            await tab.evaluate(
                f"document.getElementById('format').value = '{response_format}';"
                f"document.getElementById('stream').checked = {'true' if stream else 'false'};"
                "document.getElementById('file-status').textContent = '';"
                "document.getElementById('transcribe').click()"
            )
            await tab.wait_for("document.getElementById('file-status').textContent === 'done'", timeout=90)
            results[response_format] = await tab.evaluate("document.getElementById('file-result').textContent")

    verbose = json.loads(results["verbose_json"])
    assert verbose["language"] == "english" and verbose["segments"], verbose
    assert wer([JFK], [verbose["text"]]) <= 0.1
    assert "-->" in results["srt"] and "your country" in results["srt"]
    assert wer([JFK], [results["text"]]) <= 0.1


async def test_a_refused_key_is_shown_on_the_page(make_fake_app: AppFactory) -> None:
    with serve_in_thread(make_fake_app(api_keys="right-key")) as url:
        async with chromium(DATA / "jfk.wav") as tab:
            await tab.open(url + "/")
            await tab.evaluate(
                "const key = document.getElementById('key'); key.value = 'wrong-key';"
                "key.dispatchEvent(new Event('change')); document.getElementById('record').click()"
            )
            status = await tab.wait_for(
                "document.getElementById('live-status').classList.contains('error')"
                " && document.getElementById('live-status').textContent",
                timeout=30,
            )
            assert "key" in status.lower(), status
            # With the right key the model list loads (GET /v1/models with the Bearer header).
            await tab.evaluate(
                "const k = document.getElementById('key'); k.value = 'right-key'; k.dispatchEvent(new Event('change'))"
            )
            await tab.wait_for("document.querySelectorAll('#model option').length > 1", timeout=15)
