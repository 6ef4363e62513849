"""Transcripts -> <recognitionResults> XML, always well-formed whatever the text holds."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from app.core.errors import SttError
from app.core.types import Transcript

PROLOG = '<?xml version="1.0" encoding="utf-8"?>\n'
# Characters outside XML 1.0's Char production (C0 controls, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def variants(transcript: Transcript, count: int) -> list[tuple[str, float]]:
    """Whole-utterance n-best: the best text, then each segment's k-th alternative in its place."""
    spoken = [s for s in transcript.segments if s.text]
    if not spoken:
        return []
    found: list[tuple[str, float]] = []
    for k in range(count):
        texts, confidence = [], 1.0
        for s in spoken:
            choice = s.alternatives[k] if k < len(s.alternatives) else (s.alternatives[0] if s.alternatives else None)
            texts.append(choice.text if choice else s.text)
            confidence = min(confidence, choice.confidence if choice else s.confidence)
        text = " ".join(t for t in texts if t)
        if text and all(text != f for f, _ in found):
            found.append((text, confidence))
    return found


def document(hypotheses: list[tuple[str, float]]) -> bytes:
    root = ET.Element("recognitionResults", success="1" if hypotheses else "0")
    for text, confidence in hypotheses:
        ET.SubElement(root, "variant", confidence=f"{confidence:.2f}").text = clean(text)
    body = ET.tostring(root, encoding="unicode").replace(" />", "/>")
    return (PROLOG + body).encode("utf-8")


def error_document(error: SttError) -> bytes:
    root = ET.Element("recognitionResults", success="0")
    ET.SubElement(root, "error", code=error.kind).text = clean(error.message)
    return (PROLOG + ET.tostring(root, encoding="unicode")).encode("utf-8")
