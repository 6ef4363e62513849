"""The nested parts of RecognitionConfig as pydantic models: a value of the wrong type (a string
where an object belongs, an object where a list does) is a 400 naming its place, never a 500. The
flat fields keep their hand-written checks in config.py (enum names or numbers, ranges)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr


class _Open(BaseModel):
    """Fields keep the wire's camelCase names; unknown ones are checked by config.py."""

    model_config = ConfigDict(extra="allow")


class SpeechContext(_Open):
    phrases: list[StrictStr] = []
    boost: float | None = None


class Phrase(_Open):
    value: StrictStr = ""
    boost: float | None = None


class PhraseSet(_Open):
    phrases: list[Phrase] = []


class Adaptation(_Open):
    phraseSets: list[PhraseSet] = []
    phraseSetReferences: list[Any] = []
    customClasses: list[Any] = []
    abnfGrammar: dict[str, Any] | None = None


class Diarization(_Open):
    enableSpeakerDiarization: StrictBool = False


class Normalization(_Open):
    entries: list[dict[str, Any]] = []


class ConfigShapes(_Open):
    speechContexts: list[SpeechContext] = []
    adaptation: Adaptation | None = None
    diarizationConfig: Diarization | None = None
    transcriptNormalization: Normalization | None = None
    metadata: dict[str, Any] | None = None
    alternativeLanguageCodes: list[StrictStr] = []
