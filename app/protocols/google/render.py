"""Transcript -> RecognizeResponse / Operation JSON exactly as Google's REST API shapes them."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import Any

from app.core.codec import transcript_from_dict
from app.core.jobs import JobRecord, JobStatus
from app.core.types import Alternative, Transcript, joined_alternatives
from app.protocols.google.config import GoogleConfig, result_language
from app.protocols.google.errors import rpc_status

TYPE_ROOT = "type.googleapis.com/google.cloud.speech"


def duration(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}s"


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_request_id() -> str:
    # 19 digits that still fit an int64 (the client parses requestId as one).
    return str(10**18 + secrets.randbelow(8 * 10**18))


def recognize_response(transcript: Transcript, config: GoogleConfig, request_id: str) -> dict[str, Any]:
    results = []
    started: set[int] = set()
    for segment in transcript.segments:
        if not segment.text:
            continue
        # "You can concatenate each result to obtain the full transcript without using a separator."
        lead = " " if segment.channel in started else ""
        started.add(segment.channel)
        choices = segment.alternatives or (Alternative(segment.text, segment.confidence),)
        alternatives = [
            {"transcript": lead + a.text, "confidence": round(a.confidence, 6)}
            for a in choices[: config.max_alternatives]
        ]
        if config.word_times or config.word_confidence:
            alternatives[0]["words"] = [_word(w.text, w.start, w.end, w.probability, config) for w in segment.words]
        result: dict[str, Any] = {
            "alternatives": alternatives,
            "resultEndTime": duration(segment.end),
            "languageCode": result_language(config, transcript.language),
        }
        if config.separate_channels:
            result["channelTag"] = segment.channel + 1
        results.append(result)
    return {
        "results": results,
        "totalBilledTime": f"{math.ceil(transcript.duration * transcript.channels)}s",
        "requestId": request_id,
    }


def _word(text: str, start: float, end: float, probability: float, config: GoogleConfig) -> dict[str, Any]:
    word: dict[str, Any] = {}
    if config.word_times:
        word["startTime"], word["endTime"] = duration(start), duration(end)
    word["word"] = text
    if config.word_confidence:
        word["confidence"] = round(probability, 6)
    return word


def operation(record: JobRecord) -> dict[str, Any]:
    version = record.meta["version"]
    metadata: dict[str, Any] = {
        "@type": f"{TYPE_ROOT}.{version}.LongRunningRecognizeMetadata",
        "progressPercent": int(record.progress),
        "startTime": timestamp(record.created),  # "time when the request was received": one value throughout
        "lastUpdateTime": timestamp(record.updated),
    }
    if record.meta.get("uri"):
        metadata["uri"] = record.meta["uri"]
    body: dict[str, Any] = {"name": record.id, "metadata": metadata}
    if record.status is JobStatus.DONE and record.result is not None:
        config = GoogleConfig.from_meta(record.meta["config"])
        response = recognize_response(transcript_from_dict(record.result), config, record.meta["request_id"])
        body["done"] = True
        body["response"] = {"@type": f"{TYPE_ROOT}.{version}.LongRunningRecognizeResponse", **response}
    elif record.status.terminal:
        body["done"] = True
        body["error"] = rpc_status(record.error or {"kind": "cancelled", "message": "the operation was cancelled"})
    return body


def utterance_result(transcript: Transcript, config: GoogleConfig) -> dict[str, Any]:
    """One live utterance as a final StreamingRecognitionResult (its segments joined, n-best too)."""
    segments = [s for s in transcript.segments if s.text]
    alternatives: list[dict[str, Any]] = [
        {"transcript": a.text, "confidence": round(a.confidence, 6)}
        for a in joined_alternatives(segments, config.max_alternatives)
    ]
    if config.word_times or config.word_confidence:
        alternatives[0]["words"] = [_word(w.text, w.start, w.end, w.probability, config) for w in transcript.words]
    end = segments[-1].end if segments else 0.0
    return {
        "alternatives": alternatives,
        "isFinal": True,
        "resultEndTime": duration(end),
        "languageCode": result_language(config, transcript.language),
    }
