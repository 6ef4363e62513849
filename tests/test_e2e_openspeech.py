"""End to end: the Open API (EkStep) against `python -m app` with the real model and real speech:
REST and gRPC recognize (English and Hindi), srt, audioUri from a local HTTP server, punctuate on
held-out text through the endpoint, and recognize_audio streaming speech with pauses."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import httpx
import jiwer
import numpy as np
import pytest
from google.protobuf import json_format

from app.core.punctuation_eval import chunks, evaluate
from app.protocols.ekstep import messages as pb
from tests.audio_tools import DATA, read_pcm, references, tts_references
from tests.conftest import RealServer
from tests.test_punctuation import F1_FLOOR
from tests.wer import wer

pytestmark = pytest.mark.e2e
REFS = references()
CLIPS = ["jfk.wav", "ps_librivox_0870.wav", "ps_librivox_0890.wav", "ps_librivox_0920.wav"]
SERVICE = "/ekstep.speech_recognition.SpeechRecognizer/"
SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+)")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """tests/data over HTTP on loopback: the audioUri origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(DATA)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """A server that may fetch from loopback over http (the SSRF guard is on by default)."""
    started = RealServer(
        tmp_path_factory.mktemp("openspeech"), ASR_ALLOWED_URI_SCHEMES="http", ASR_FETCH_ALLOW_PRIVATE="true"
    )
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def channel(server: RealServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as opened:
        yield opened


def content(name: str) -> dict[str, str]:
    return {"audioContent": base64.b64encode((DATA / name).read_bytes()).decode()}


def recognize_rest(server: RealServer, language: str, audio: list[dict[str, str]], **config: Any) -> dict[str, Any]:
    body = {"config": {"audioFormat": "wav", **config}, "audio": audio}
    answer = httpx.post(f"{server.url}/v1/recognize/{language}", json=body, timeout=300)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_rest_and_grpc_recognize_english_speech(server: RealServer, channel: grpc.Channel) -> None:
    audio = [content(clip) for clip in CLIPS]
    rest = recognize_rest(server, "en", audio, punctuation=True)
    assert rest["status"] == "SUCCESS"
    texts = [o["source"] for o in rest["output"]]
    assert wer([REFS[c] for c in CLIPS], texts) < 0.05
    assert texts[0].startswith("And so my fellow Americans,")  # punctuated and cased
    request = json_format.ParseDict(
        {"config": {"language": {"sourceLanguage": "en"}, "punctuation": True}, "audio": audio},
        pb.SpeechRecognitionRequest(),
    )
    call = channel.unary_unary(
        SERVICE + "recognize",
        request_serializer=pb.SpeechRecognitionRequest.SerializeToString,
        response_deserializer=pb.SpeechRecognitionResult.FromString,
    )
    answer = call(request, metadata=(("language", "en"),), timeout=300)
    assert [o.source for o in answer.output] == texts


def test_hindi_speech_comes_back_in_devanagari(server: RealServer) -> None:
    """espeak-ng's Hindi read by whisper-base: the script is right; the words are only roughly so
    (synthetic voice, small model): the character error rate is bounded loosely."""
    reference = tts_references()["espeak_hi.wav"][1]
    text = recognize_rest(server, "hi", [content("espeak_hi.wav")], punctuation=True)["output"][0]["source"]
    letters = [c for c in text if c.isalpha()]
    assert letters and sum("\u0900" <= c <= "\u097f" for c in letters) / len(letters) > 0.9, text
    assert jiwer.cer(reference, text) < 0.6, text


def test_srt_of_real_speech(server: RealServer) -> None:
    source = recognize_rest(server, "en", [content("moonshine_two_cities.wav")], transcriptionFormat={"value": "srt"})[
        "output"
    ][0]["source"]
    cues = SRT_CUE.findall(source)
    assert len(cues) >= 3 and source.count("\n\n") == len(cues)
    ends = []
    for number, (index, *clock, text) in enumerate(cues, start=1):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(v) for v in clock)
        start, end = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert int(index) == number and start < end <= 44.5 and text.strip()
        ends.append(end)
    assert ends == sorted(ends)
    joined = " ".join(cue[-1] for cue in cues)
    assert wer([REFS["moonshine_two_cities.wav"]], [joined]) < 0.1


def test_audio_uri_from_a_local_http_server(server: RealServer, origin: str) -> None:
    answer = recognize_rest(server, "en", [{"audioUri": f"{origin}/jfk.wav"}, content("ps_librivox_0880.wav")])
    texts = [o["source"] for o in answer["output"]]
    assert wer([REFS["jfk.wav"], REFS["ps_librivox_0880.wav"]], texts) < 0.05
    assert texts[0] == texts[0].lower() and "," not in texts[0]  # punctuation off unless asked, as the seed
    mismatch = httpx.post(
        f"{server.url}/v1/recognize/en",
        json={"config": {"audioFormat": "flac"}, "audio": [{"audioUri": f"{origin}/jfk.wav"}]},
        timeout=60,
    )
    assert mismatch.json()["status_text"] == "Mismatch between audio format specified and audio format of file given."


def _messages(user: str, pauses: list[str]) -> Iterator[Any]:
    """Each clip spoken at twice real time in 100 ms chunks with speaking=true, then the pause
    (speaking=false, as the browser SDK sends at silence onset), then isEnd."""
    for clip in pauses:
        pcm = (np.clip(read_pcm(clip), -1, 1) * 32767).astype("<i2").tobytes()
        for start in range(0, len(pcm), 3200):
            yield pb.Message(audio=pcm[start : start + 3200], user=user, language="en", speaking=True)
            time.sleep(0.05)
        yield pb.Message(user=user, language="en", speaking=False)
    yield pb.Message(user=user, language="en", isEnd=True)


def test_recognize_audio_streams_real_speech_with_pauses(channel: grpc.Channel) -> None:
    clips = ["jfk.wav", "ps_librivox_0880.wav", "ps_librivox_0930.wav"]
    call = channel.stream_stream(
        SERVICE + "recognize_audio",
        request_serializer=pb.Message.SerializeToString,
        response_deserializer=pb.Response.FromString,
    )
    answers = list(call(_messages("speaker-1", clips), timeout=300))
    assert [a.action for a in answers] == ["True", "True", "True", "terminate"]
    bodies = [json.loads(a.transcription) for a in answers]
    texts = [b["transcription"] for b in bodies[:3]]
    for earlier, later in itertools.pairwise(texts):
        assert later.startswith(earlier) and len(later) > len(earlier)  # cumulative, per pause
    assert wer([" ".join(REFS[c] for c in clips)], [texts[-1]]) < 0.08
    assert all(b["status"] == "OK" and b["success"] for b in bodies[:3]) and bodies[3]["success"]
    assert all(a.user == "speaker-1" and a.language == "en" for a in answers)


CHECKLIST = [
    ("/v1/recognize/en", {"config": {"transcriptionFormat": {"value": "alternatives"}}, "audio": [content("jfk.wav")]},
     400, "Transcription Format not implemented yet"),
    ("/v1/recognize/en", {"config": {"audioFormat": "pcm"}, "audio": [content("jfk.wav")]},
     400, "Audio Format not implemented yet"),
    ("/v1/recognize/en", {"config": {"audioFormat": "wav"}}, 400, "Audio input not specified"),
    ("/v1/recognize/en", {"config": {}, "audio": [{}]},
     400, "empty audio source is not implemented yet, send valid attributes only for audioUri or audioContent"),
    ("/v1/recognize/mni", {"config": {}, "audio": [content("jfk.wav")]}, 400, "Language mni not implemented yet"),
    ("/v1/recognize/zz", {"config": {}, "audio": [content("jfk.wav")]},
     404, "Not Found: 'zz' is not a language code of this API"),
    ("/v1/transcribe/en", {}, 404, "No route POST /v1/transcribe/en"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "payload", "status", "text"), CHECKLIST)
def test_the_checklist_errors_from_the_real_server(
    server: RealServer, path: str, payload: dict[str, Any], status: int, text: str
) -> None:
    answer = httpx.post(server.url + path, json=payload, timeout=60)
    assert answer.status_code == status
    if path.startswith("/v1/transcribe"):  # not an Open API path: the default (OpenAI) envelope
        assert answer.json()["error"]["message"].startswith(text)
        return
    assert answer.json() == {"status": "ERROR", "output": [], "status_text": text}


def test_content_type_punctuate_and_grpc_status(server: RealServer, channel: grpc.Channel) -> None:
    refused = httpx.post(f"{server.url}/v1/recognize/hi", content=b"{}", headers={"content-type": "text/plain"})
    assert (refused.status_code, refused.json()["status_text"]) == (406, "Given Content-type is not allowed")
    punctuated = httpx.post(
        f"{server.url}/v1/punctuate/en", json={"text": "hello world", "language": "en", "enabledItn": False}
    )
    assert punctuated.status_code == 200 and punctuated.json()["language"] == "en"
    assert punctuated.json()["text"].lower().startswith("hello world")
    call = channel.unary_unary(
        SERVICE + "recognize",
        request_serializer=pb.SpeechRecognitionRequest.SerializeToString,
        response_deserializer=pb.SpeechRecognitionResult.FromString,
    )
    with pytest.raises(grpc.RpcError) as failed:
        call(pb.SpeechRecognitionRequest(), timeout=30)  # hi by default (enum 0), no audio
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert failed.value.details() == "Audio input not specified"  # type: ignore[attr-defined]


def test_punctuate_held_out_text_through_the_endpoint(server: RealServer) -> None:
    """The held-out text (never trained on; tests/data/punctuation/SOURCES.md), lower-cased and
    stripped of marks, punctuated by POST /v1/punctuate/en in ~200-word pieces, as a client would
    send an ASR transcript: the measured bounds (tests/test_punctuation.py's: F1 over , . ? 0.676
    less a margin, under the issue's 0.75 target; casing >= 0.95, the target), so what the server
    does matches what the model does alone."""
    lines = (DATA / "punctuation" / "en_heldout.txt").read_text().splitlines()

    def punctuate(text: str) -> str:
        answer = httpx.post(f"{server.url}/v1/punctuate/en", json={"text": text, "language": "en"}, timeout=60)
        assert answer.status_code == 200, answer.text
        punctuated: str = answer.json()["text"]
        return punctuated

    scores = evaluate(punctuate, chunks(lines))
    assert scores.words > 5000
    assert scores.prf()[2] >= F1_FLOOR
    assert scores.case_accuracy >= 0.95
